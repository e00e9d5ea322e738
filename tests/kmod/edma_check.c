// SPDX-License-Identifier: GPL-2.0
/*
 * edma_check - independent data-path check of a DesignWare eDMA that is
 * driven by the upstream dw-edma core through dw-edma-pcie (PCI 16c3:edda).
 *
 * The module only uses the generic dmaengine slave API, so every register
 * write, linked-list element and interrupt is produced by upstream dw-edma,
 * not by code of ours. For each test it fills host pages with a
 * pseudo-random pattern, moves them host -> device (DMA_MEM_TO_DEV channel)
 * to a device address, moves them back device -> host (DMA_DEV_TO_MEM
 * channel) into zeroed pages with a different scatter-gather shape, and
 * compares. Everything runs synchronously in module_init; the result is a
 * KTAP document on the kernel log. See README.md.
 */

#include <linux/completion.h>
#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/dmaengine.h>
#include <linux/err.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/random.h>
#include <linux/scatterlist.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>

static unsigned int iterations = 8;
module_param(iterations, uint, 0444);
MODULE_PARM_DESC(iterations, "Iterations per test case (default 8, >= 1)");

static unsigned int max_size = SZ_1M;
module_param(max_size, uint, 0444);
MODULE_PARM_DESC(max_size, "Largest single transfer in bytes (default 1 MiB, 1 .. 64 MiB)");

static unsigned long long dev_addr = 0x01000000;
module_param(dev_addr, ullong, 0444);
MODULE_PARM_DESC(dev_addr, "Device-side address base used for all transfers (default 0x01000000)");

static unsigned int channels;
module_param(channels, uint, 0444);
MODULE_PARM_DESC(channels, "Use at most this many channels per direction (default 0 = all)");

#define EC_TIMEOUT_MS		5000U
#define EC_MAX_REQ		256U	/* channels requested at most (HDMA: 64 + 64) */
#define EC_LL_SEGS		200U	/* > 2 * 84 elements of a 2 KiB eDMA LL region */
#define EC_LL_SEG_MAX		4096U	/* largest segment of the LL test */
#define EC_GUARD		64	/* guard bytes on each side in the overrun test */
#define EC_ITER_STEP		0x1040	/* device offset step between iterations */
#define EC_ITER_SPAN		16	/* offsets repeat after this many iterations */
#define EC_CONC_MAX		8	/* regions per phase of the concurrent test */
#define EC_CONC_LEN		SZ_256K
#define EC_REASON_LEN		320
#define EC_NO_ITER		UINT_MAX

static const size_t ec_base_sizes[] = { 4, 60, 4096, 4096 * 3 + 12, 65536 };
static const size_t ec_overrun_sizes[] = { 4, 60, 4096 * 3 + 12 };

/* Host pages described by a scatter-gather table, one segment per page. */
struct ec_buf {
	struct sg_table sgt;
	struct page **pages;
	unsigned int npages;
	size_t len;
	unsigned int dma_nents;		/* segments after the last mapping */
	struct device *map_dev;
	enum dma_data_direction map_dir;
	bool mapped;
	/* Owned by a timed-out transfer: freed only after channel release. */
	bool parked;
};

struct ec_chan {
	struct dma_chan *chan;
	enum dma_transfer_direction dir;
	unsigned int idx;		/* index among channels of this direction */
	unsigned int dead_test;		/* test that timed out on it, 0 = healthy */
	struct list_head parked;	/* timed-out transfers (struct ec_xfer) */
};

struct ec_xfer {
	struct completion done;
	struct ec_chan *ch;
	struct ec_buf *buf;
	dma_cookie_t cookie;
	enum dmaengine_tx_result result;
	u32 residue;
	struct list_head node;
};

struct ec_ctx {
	struct device *dev;		/* the DMA device's struct device (PCI) */
	struct dma_device *dma;
	struct ec_chan *rd;		/* DMA_MEM_TO_DEV channels */
	struct ec_chan *wr;		/* DMA_DEV_TO_MEM channels */
	unsigned int nrd, nwr, npairs;
	size_t sizes[ARRAY_SIZE(ec_base_sizes) + 1];
	unsigned int nsizes;
	u64 stride;			/* device bytes reserved per channel pair */
	u64 conc_base;
	size_t conc_len;
	u64 conc_stride;
	unsigned int conc_n;		/* regions per phase */
	u8 *exp, *got;			/* linear scratch buffers */
	size_t scratch_len;
	u32 salt;
	unsigned int test_no, pass, fail;
	const char *prefix;		/* prepended to the failure reason */
	char reason[EC_REASON_LEN];
};

struct ec_filter_arg {
	struct dma_device *dma;
};

/* ---- pattern ---------------------------------------------------------- */

static u32 ec_mix(u32 x)
{
	x ^= x >> 16;
	x *= 0x85ebca6bU;
	x ^= x >> 13;
	x *= 0xc2b2ae35U;
	x ^= x >> 16;
	return x;
}

static u32 ec_seed(struct ec_ctx *c, unsigned int it, unsigned int sub)
{
	return ec_mix(c->salt ^ ec_mix(c->test_no * 0x10001U + it * 0x9e37U +
				       sub * 0x7f4a7c15U));
}

/*
 * Position-dependent bytes (one hash per 32-bit word, little-endian), so a
 * block that lands in the wrong place is detected, not only lost data.
 */
static u32 ec_word(u32 seed, size_t w)
{
	return ec_mix(seed ^ ec_mix((u32)w * 0x9e3779b9U + 0x7f4a7c15U));
}

static void ec_fill(u8 *p, size_t len, u32 seed)
{
	size_t i, k;
	u32 w;

	for (i = 0; i < len; i += 4) {
		w = ec_word(seed, i / 4);
		for (k = 0; k < 4 && i + k < len; k++)
			p[i + k] = w >> (8 * k);
	}
}

/* ---- reporting -------------------------------------------------------- */

static __printf(2, 3) void ec_reason(struct ec_ctx *c, const char *fmt, ...)
{
	ssize_t n;
	va_list ap;

	if (c->reason[0])
		return;		/* the first error is the one reported */
	n = strscpy(c->reason, c->prefix, sizeof(c->reason));
	if (n < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(c->reason + n, sizeof(c->reason) - n, fmt, ap);
	va_end(ap);
}

static void ec_begin(struct ec_ctx *c)
{
	c->test_no++;
	c->prefix = "";
	c->reason[0] = '\0';
}

static void ec_end(struct ec_ctx *c, const char *name, int ret, unsigned int it)
{
	if (!ret) {
		c->pass++;
		pr_info("ok %u %s\n", c->test_no, name);
		return;
	}
	c->fail++;
	if (!c->reason[0])
		ec_reason(c, "error %d", ret);
	if (it == EC_NO_ITER)
		pr_info("not ok %u %s # %s\n", c->test_no, name, c->reason);
	else
		pr_info("not ok %u %s # iteration %u/%u: %s\n", c->test_no, name,
			it + 1, iterations, c->reason);
}

static const char *ec_dir_name(enum dma_transfer_direction dir)
{
	return dir == DMA_MEM_TO_DEV ? "MEM_TO_DEV" : "DEV_TO_MEM";
}

/* ---- host buffers ----------------------------------------------------- */

static void ec_buf_unmap(struct ec_buf *buf)
{
	if (!buf->mapped)
		return;
	dma_unmap_sgtable(buf->map_dev, &buf->sgt, buf->map_dir, 0);
	buf->mapped = false;
}

static void ec_buf_free(struct ec_buf *buf)
{
	unsigned int i;

	if (!buf || buf->parked)
		return;
	ec_buf_unmap(buf);
	if (buf->sgt.sgl)
		sg_free_table(&buf->sgt);
	for (i = 0; i < buf->npages; i++)
		__free_page(buf->pages[i]);
	kfree(buf->pages);
	kfree(buf);
}

/*
 * Segment i is lens[i] bytes at offset offs[i] of its own, separately
 * allocated zeroed page, so the list is not physically contiguous.
 */
static struct ec_buf *ec_buf_alloc(const u32 *offs, const u32 *lens,
				   unsigned int nseg)
{
	struct scatterlist *sg;
	struct ec_buf *buf;
	unsigned int i;

	buf = kzalloc_obj(*buf);
	if (!buf)
		return NULL;
	buf->pages = kcalloc(nseg, sizeof(*buf->pages), GFP_KERNEL);
	if (!buf->pages)
		goto err;
	for (i = 0; i < nseg; i++) {
		buf->pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!buf->pages[i])
			goto err;
		buf->npages++;
		buf->len += lens[i];
	}
	if (sg_alloc_table(&buf->sgt, nseg, GFP_KERNEL)) {
		buf->sgt.sgl = NULL;
		goto err;
	}
	for_each_sgtable_sg(&buf->sgt, sg, i)
		sg_set_page(sg, buf->pages[i], lens[i], offs[i]);
	return buf;
err:
	ec_buf_free(buf);
	return NULL;
}

/* len bytes starting head_off bytes into the first page, then whole pages. */
static struct ec_buf *ec_buf_alloc_linear(size_t len, unsigned int head_off)
{
	unsigned int nseg = DIV_ROUND_UP(head_off + len, PAGE_SIZE);
	struct ec_buf *buf = NULL;
	u32 *offs, *lens;
	size_t left = len;
	unsigned int i;

	offs = kcalloc(nseg, sizeof(*offs), GFP_KERNEL);
	lens = kcalloc(nseg, sizeof(*lens), GFP_KERNEL);
	if (!offs || !lens)
		goto out;
	for (i = 0; i < nseg; i++) {
		offs[i] = i ? 0 : head_off;
		lens[i] = min_t(size_t, left, PAGE_SIZE - offs[i]);
		left -= lens[i];
	}
	buf = ec_buf_alloc(offs, lens, nseg);
out:
	kfree(offs);
	kfree(lens);
	return buf;
}

static int ec_buf_load(struct ec_ctx *c, struct ec_buf *buf, const u8 *src)
{
	if (sg_copy_from_buffer(buf->sgt.sgl, buf->sgt.orig_nents, src,
				buf->len) != buf->len) {
		ec_reason(c, "sg_copy_from_buffer copied less than %zu bytes",
			  buf->len);
		return -EIO;
	}
	return 0;
}

/* Compares buf (already unmapped) with c->exp. */
static int ec_verify(struct ec_ctx *c, struct ec_buf *buf, const char *what)
{
	size_t len = buf->len, first = len, bad = 0, i, n;

	if (sg_copy_to_buffer(buf->sgt.sgl, buf->sgt.orig_nents, c->got,
			      len) != len) {
		ec_reason(c, "sg_copy_to_buffer copied less than %zu bytes", len);
		return -EIO;
	}
	if (!memcmp(c->exp, c->got, len))
		return 0;
	for (i = 0; i < len; i++) {
		if (c->exp[i] != c->got[i]) {
			if (first == len)
				first = i;
			bad++;
		}
	}
	n = min_t(size_t, 16, len - first);
	ec_reason(c, "%sdata mismatch at offset %zu of %zu (%zu bytes differ): expected %*ph got %*ph",
		  what, first, len, bad, (int)n, c->exp + first, (int)n,
		  c->got + first);
	return -EILSEQ;
}

/* ---- transfers -------------------------------------------------------- */

static void ec_dma_done(void *param, const struct dmaengine_result *res)
{
	struct ec_xfer *x = param;

	x->result = res ? res->result : DMA_TRANS_NOERROR;
	x->residue = res ? res->residue : 0;
	complete(&x->done);
}

static int ec_chan_usable(struct ec_ctx *c, struct ec_chan *ch)
{
	if (!ch->dead_test)
		return 0;
	ec_reason(c, "%s (%s) unusable: it timed out in test %u",
		  dma_chan_name(ch->chan), ec_dir_name(ch->dir), ch->dead_test);
	return -EIO;
}

/*
 * Maps buf for ch's direction on the DMA device, configures the device-side
 * address and submits one slave scatter-gather descriptor (not issued yet).
 */
static struct ec_xfer *ec_xfer_start(struct ec_ctx *c, struct ec_chan *ch,
				     struct ec_buf *buf, u64 daddr)
{
	struct dma_chan *chan = ch->chan;
	struct device *dev = chan->device->dev;
	enum dma_data_direction ddir;
	struct dma_async_tx_descriptor *tx;
	struct dma_slave_config cfg = { };
	struct ec_xfer *x;
	int ret;

	ret = ec_chan_usable(c, ch);
	if (ret)
		return ERR_PTR(ret);

	ddir = ch->dir == DMA_MEM_TO_DEV ? DMA_TO_DEVICE : DMA_FROM_DEVICE;

	x = kzalloc_obj(*x);
	if (!x) {
		ec_reason(c, "out of memory");
		return ERR_PTR(-ENOMEM);
	}
	init_completion(&x->done);
	INIT_LIST_HEAD(&x->node);
	x->ch = ch;
	x->buf = buf;

	ret = dma_map_sgtable(dev, &buf->sgt, ddir, 0);
	if (ret) {
		ec_reason(c, "dma_map_sgtable(%s, %u segments) failed: %d",
			  dev_name(dev), buf->sgt.orig_nents, ret);
		kfree(x);
		return ERR_PTR(ret);
	}
	buf->mapped = true;
	buf->dma_nents = buf->sgt.nents;
	buf->map_dev = dev;
	buf->map_dir = ddir;

	cfg.direction = ch->dir;
	cfg.src_addr_width = DMA_SLAVE_BUSWIDTH_4_BYTES;
	cfg.dst_addr_width = DMA_SLAVE_BUSWIDTH_4_BYTES;
	if (ch->dir == DMA_MEM_TO_DEV)
		cfg.dst_addr = (phys_addr_t)daddr;
	else
		cfg.src_addr = (phys_addr_t)daddr;
	ret = dmaengine_slave_config(chan, &cfg);
	if (ret) {
		ec_reason(c, "dmaengine_slave_config(%s) failed: %d",
			  dma_chan_name(chan), ret);
		goto err;
	}

	tx = dmaengine_prep_slave_sg(chan, buf->sgt.sgl, buf->sgt.nents, ch->dir,
				     DMA_PREP_INTERRUPT | DMA_CTRL_ACK);
	if (!tx) {
		ec_reason(c, "dmaengine_prep_slave_sg(%s, %s, %u segments, %zu bytes, dev 0x%llx) returned NULL",
			  dma_chan_name(chan), ec_dir_name(ch->dir),
			  buf->sgt.nents, buf->len, daddr);
		ret = -EIO;
		goto err;
	}
	tx->callback_result = ec_dma_done;
	tx->callback_param = x;

	x->cookie = dmaengine_submit(tx);
	if (dma_submit_error(x->cookie)) {
		ec_reason(c, "dmaengine_submit(%s) failed: %d",
			  dma_chan_name(chan), x->cookie);
		ret = -EIO;
		goto err;
	}
	return x;
err:
	ec_buf_unmap(buf);
	kfree(x);
	return ERR_PTR(ret);
}

/*
 * Waits for x. On completion the buffer is unmapped and x freed. On timeout
 * the channel is terminated and marked dead, and x and its still-mapped
 * buffer are parked on the channel until the channel has been released.
 */
static int ec_xfer_wait(struct ec_ctx *c, struct ec_xfer *x)
{
	struct ec_chan *ch = x->ch;
	struct dma_chan *chan = ch->chan;
	enum dma_status st;
	int ret = 0;

	if (ch->dead_test && !completion_done(&x->done)) {
		/* Terminated together with an earlier transfer of this batch. */
		ec_reason(c, "%s terminated after a timeout", dma_chan_name(chan));
		ret = -ETIMEDOUT;
	} else if (!wait_for_completion_timeout(&x->done,
						msecs_to_jiffies(EC_TIMEOUT_MS))) {
		struct dma_tx_state state = { };

		st = dmaengine_tx_status(chan, x->cookie, &state);
		ec_reason(c, "%s %s of %zu bytes timed out after %u ms (status %d, residue %u)",
			  dma_chan_name(chan), ec_dir_name(ch->dir), x->buf->len,
			  EC_TIMEOUT_MS, st, state.residue);
		dmaengine_terminate_sync(chan);
		ch->dead_test = c->test_no;
		ret = -ETIMEDOUT;
	}
	if (ret) {
		x->buf->parked = true;
		list_add_tail(&x->node, &ch->parked);
		return ret;
	}

	ec_buf_unmap(x->buf);
	st = dmaengine_tx_status(chan, x->cookie, NULL);
	if (x->result != DMA_TRANS_NOERROR) {
		ec_reason(c, "%s %s of %zu bytes completed with result %d, residue %u",
			  dma_chan_name(chan), ec_dir_name(ch->dir), x->buf->len,
			  x->result, x->residue);
		ret = -EIO;
	} else if (st != DMA_COMPLETE) {
		ec_reason(c, "%s: callback ran but dmaengine_tx_status is %d",
			  dma_chan_name(chan), st);
		ret = -EIO;
	}
	kfree(x);
	return ret;
}

/* One transfer on one channel: submit, issue, wait. */
static int ec_dma_one(struct ec_ctx *c, struct ec_chan *ch, struct ec_buf *buf,
		      u64 daddr)
{
	struct ec_xfer *x;

	x = ec_xfer_start(c, ch, buf, daddr);
	if (IS_ERR(x))
		return PTR_ERR(x);
	dma_async_issue_pending(ch->chan);
	return ec_xfer_wait(c, x);
}

/* Several transfers, all submitted before any channel is issued. */
struct ec_batch {
	struct ec_xfer *x[2 * EC_CONC_MAX];
	unsigned int n;
	int err;
};

static void ec_batch_add(struct ec_ctx *c, struct ec_batch *b,
			 struct ec_chan *ch, struct ec_buf *buf, u64 daddr)
{
	struct ec_xfer *x;

	if (b->err)
		return;
	if (WARN_ON(b->n >= ARRAY_SIZE(b->x))) {
		ec_reason(c, "internal: batch too large");
		b->err = -EINVAL;
		return;
	}
	x = ec_xfer_start(c, ch, buf, daddr);
	if (IS_ERR(x))
		b->err = PTR_ERR(x);
	else
		b->x[b->n++] = x;
}

static int ec_batch_run(struct ec_ctx *c, struct ec_batch *b)
{
	unsigned int i;
	int ret;

	/* Even after a submit error, run what was submitted to completion. */
	for (i = 0; i < c->nrd; i++)
		dma_async_issue_pending(c->rd[i].chan);
	for (i = 0; i < c->nwr; i++)
		dma_async_issue_pending(c->wr[i].chan);
	for (i = 0; i < b->n; i++) {
		ret = ec_xfer_wait(c, b->x[i]);
		if (ret && !b->err)
			b->err = ret;
	}
	b->n = 0;
	return b->err;
}

/* ---- test cases ------------------------------------------------------- */

static struct ec_chan *ec_pair_rd(struct ec_ctx *c, unsigned int p)
{
	return &c->rd[p % c->nrd];
}

static struct ec_chan *ec_pair_wr(struct ec_ctx *c, unsigned int p)
{
	return &c->wr[p % c->nwr];
}

static u64 ec_pair_addr(struct ec_ctx *c, unsigned int p, unsigned int it)
{
	return dev_addr + p * c->stride + (it % EC_ITER_SPAN) * EC_ITER_STEP;
}

/* Write src's pattern to the device at daddr, read it back into dst. */
static int ec_roundtrip(struct ec_ctx *c, unsigned int p, struct ec_buf *src,
			struct ec_buf *dst, u64 daddr, u32 seed)
{
	int ret;

	ec_fill(c->exp, src->len, seed);
	ret = ec_buf_load(c, src, c->exp);
	if (!ret)
		ret = ec_dma_one(c, ec_pair_rd(c, p), src, daddr);
	if (!ret)
		ret = ec_dma_one(c, ec_pair_wr(c, p), dst, daddr);
	if (!ret)
		ret = ec_verify(c, dst, "");
	return ret;
}

/* edma_mem_to_dev_to_mem_<len>B_ch<p> */
static void ec_test_size(struct ec_ctx *c, unsigned int p, size_t len)
{
	struct ec_buf *src, *dst;
	unsigned int it = 0;
	char name[64];
	int ret = 0;

	snprintf(name, sizeof(name), "edma_mem_to_dev_to_mem_%zuB_ch%u", len, p);
	ec_begin(c);
	for (it = 0; it < iterations && !ret; it++) {
		/*
		 * Host offsets differ between source and destination, so the
		 * two scatter-gather lists split the data at different places.
		 */
		unsigned int soff = (it * 1028) % PAGE_SIZE;
		unsigned int doff = ((it + 2) * 2056) % PAGE_SIZE;

		src = ec_buf_alloc_linear(len, soff);
		dst = ec_buf_alloc_linear(len, doff);
		if (!src || !dst) {
			ec_reason(c, "out of memory");
			ret = -ENOMEM;
		} else {
			ret = ec_roundtrip(c, p, src, dst, ec_pair_addr(c, p, it),
					   ec_seed(c, it, 0));
		}
		ec_buf_free(src);
		ec_buf_free(dst);
	}
	ec_end(c, name, ret, it - 1);
}

/*
 * edma_ll_200seg_ch<p>: 200 segments of 4..4096 bytes at varying page
 * offsets in each direction; dw-edma has to split them over several
 * linked-list windows (ll_max elements each) and restart the channel.
 */
static void ec_test_ll(struct ec_ctx *c, unsigned int p)
{
	u32 *soffs, *slens, *doffs, *dlens;
	struct ec_buf *src, *dst;
	unsigned int it = 0, i;
	char name[64];
	int ret = 0;

	snprintf(name, sizeof(name), "edma_ll_%useg_ch%u", EC_LL_SEGS, p);
	ec_begin(c);
	soffs = kcalloc(EC_LL_SEGS, sizeof(u32), GFP_KERNEL);
	slens = kcalloc(EC_LL_SEGS, sizeof(u32), GFP_KERNEL);
	doffs = kcalloc(EC_LL_SEGS, sizeof(u32), GFP_KERNEL);
	dlens = kcalloc(EC_LL_SEGS, sizeof(u32), GFP_KERNEL);
	if (!soffs || !slens || !doffs || !dlens) {
		ec_reason(c, "out of memory");
		ret = -ENOMEM;
	}
	for (it = 0; it < iterations && !ret; it++) {
		u32 lseed = ec_seed(c, it, 1);
		unsigned int room;

		for (i = 0; i < EC_LL_SEGS; i++) {
			slens[i] = 4 * (1 + ec_mix(lseed + i) % (EC_LL_SEG_MAX / 4));
			if (i == 0)
				slens[i] = 4;
			else if (i == EC_LL_SEGS - 1)
				slens[i] = 8;
		}
		for (i = 0; i < EC_LL_SEGS; i++) {
			/* Same total, segment boundaries in other places. */
			dlens[i] = slens[EC_LL_SEGS - 1 - i];
			room = (PAGE_SIZE - slens[i]) / 4 + 1;
			soffs[i] = 4 * (ec_mix(lseed ^ (0x5bd1e995U + i)) % room);
			room = (PAGE_SIZE - dlens[i]) / 4 + 1;
			doffs[i] = 4 * (ec_mix(lseed ^ (0x1b873593U + i)) % room);
		}
		src = ec_buf_alloc(soffs, slens, EC_LL_SEGS);
		dst = ec_buf_alloc(doffs, dlens, EC_LL_SEGS);
		if (!src || !dst) {
			ec_reason(c, "out of memory");
			ret = -ENOMEM;
		} else {
			ret = ec_roundtrip(c, p, src, dst, ec_pair_addr(c, p, it),
					   ec_seed(c, it, 0));
			if (!ret && it == 0)
				pr_info("# %s: %zu bytes in %u segments, mapped to %u (MEM_TO_DEV) and %u (DEV_TO_MEM)\n",
					name, src->len, EC_LL_SEGS,
					src->dma_nents, dst->dma_nents);
		}
		ec_buf_free(src);
		ec_buf_free(dst);
	}
	kfree(soffs);
	kfree(slens);
	kfree(doffs);
	kfree(dlens);
	ec_end(c, name, ret, it ? it - 1 : EC_NO_ITER);
}

/*
 * edma_no_overrun_<len>B_ch<p>: write a guard block of len + 2 * 64 bytes,
 * write the len-byte payload into its middle, read the whole block back:
 * the payload must be there and both guards intact.
 */
static void ec_test_overrun(struct ec_ctx *c, unsigned int p, size_t len)
{
	size_t glen = len + 2 * EC_GUARD;
	struct ec_buf *guard, *pay, *dst;
	unsigned int it = 0;
	char name[64];
	int ret = 0;

	snprintf(name, sizeof(name), "edma_no_overrun_%zuB_ch%u", len, p);
	ec_begin(c);
	for (it = 0; it < iterations && !ret; it++) {
		u64 daddr = ec_pair_addr(c, p, it);
		u32 gseed = ec_seed(c, it, 2), pseed = ec_seed(c, it, 3);

		guard = ec_buf_alloc_linear(glen, 0);
		pay = ec_buf_alloc_linear(len, (it * 2052) % PAGE_SIZE);
		dst = ec_buf_alloc_linear(glen, ((it + 1) * 1028) % PAGE_SIZE);
		if (!guard || !pay || !dst) {
			ec_reason(c, "out of memory");
			ret = -ENOMEM;
			goto next;
		}
		ec_fill(c->exp, glen, gseed);
		ret = ec_buf_load(c, guard, c->exp);
		if (!ret)
			ret = ec_dma_one(c, ec_pair_rd(c, p), guard, daddr);
		if (ret)
			goto next;
		ec_fill(c->exp, len, pseed);
		ret = ec_buf_load(c, pay, c->exp);
		if (!ret)
			ret = ec_dma_one(c, ec_pair_rd(c, p), pay, daddr + EC_GUARD);
		if (!ret)
			ret = ec_dma_one(c, ec_pair_wr(c, p), dst, daddr);
		if (ret)
			goto next;
		/* Expected device image: guard, payload, guard. */
		ec_fill(c->exp, glen, gseed);
		ec_fill(c->exp + EC_GUARD, len, pseed);
		ret = ec_verify(c, dst, "guard+payload readback: ");
next:
		ec_buf_free(guard);
		ec_buf_free(pay);
		ec_buf_free(dst);
	}
	ec_end(c, name, ret, it - 1);
}

/*
 * edma_concurrent_all_channels: n regions written at once over all
 * MEM_TO_DEV channels; then those n read back over all DEV_TO_MEM channels
 * while n more regions are written (both engines busy at the same time);
 * then the second n read back. Regions outnumber channels, so channels also
 * hold several queued descriptors.
 */
static void ec_test_concurrent(struct ec_ctx *c)
{
	struct ec_buf *src[2 * EC_CONC_MAX] = { }, *dst[2 * EC_CONC_MAX] = { };
	const char *name = "edma_concurrent_all_channels";
	unsigned int n = c->conc_n, it = 0, k;
	struct ec_batch b = { };
	int ret = 0;

	ec_begin(c);
	for (k = 0; k < c->nrd && !ret; k++)
		ret = ec_chan_usable(c, &c->rd[k]);
	for (k = 0; k < c->nwr && !ret; k++)
		ret = ec_chan_usable(c, &c->wr[k]);
	if (ret) {
		ec_end(c, name, ret, EC_NO_ITER);
		return;
	}

	for (it = 0; it < iterations && !ret; it++) {
		for (k = 0; k < 2 * n; k++) {
			src[k] = ec_buf_alloc_linear(c->conc_len, (k * 516) % PAGE_SIZE);
			dst[k] = ec_buf_alloc_linear(c->conc_len, ((k + 3) * 1036) % PAGE_SIZE);
			if (!src[k] || !dst[k]) {
				ec_reason(c, "out of memory");
				ret = -ENOMEM;
				goto next;
			}
			ec_fill(c->exp, c->conc_len, ec_seed(c, it, 16 + k));
			ret = ec_buf_load(c, src[k], c->exp);
			if (ret)
				goto next;
		}

		b.err = 0;
		/* Phase A: regions 0..n-1 host -> device, all channels busy. */
		c->prefix = "phase A: ";
		for (k = 0; k < n; k++)
			ec_batch_add(c, &b, &c->rd[k % c->nrd], src[k],
				     c->conc_base + k * c->conc_stride);
		ret = ec_batch_run(c, &b);
		if (ret)
			goto next;
		/* Phase B: read back 0..n-1 while writing n..2n-1. */
		c->prefix = "phase B: ";
		for (k = 0; k < n; k++) {
			ec_batch_add(c, &b, &c->wr[(k + 1) % c->nwr], dst[k],
				     c->conc_base + k * c->conc_stride);
			ec_batch_add(c, &b, &c->rd[(n + k) % c->nrd], src[n + k],
				     c->conc_base + (n + k) * c->conc_stride);
		}
		ret = ec_batch_run(c, &b);
		if (ret)
			goto next;
		/* Phase C: read back n..2n-1. */
		c->prefix = "phase C: ";
		for (k = n; k < 2 * n; k++)
			ec_batch_add(c, &b, &c->wr[(k + 1) % c->nwr], dst[k],
				     c->conc_base + k * c->conc_stride);
		ret = ec_batch_run(c, &b);
		if (ret)
			goto next;
		c->prefix = "";
		for (k = 0; k < 2 * n && !ret; k++) {
			char what[48];

			snprintf(what, sizeof(what), "region %u (dev 0x%llx): ", k,
				 c->conc_base + k * c->conc_stride);
			ec_fill(c->exp, c->conc_len, ec_seed(c, it, 16 + k));
			ret = ec_verify(c, dst[k], what);
		}
next:
		for (k = 0; k < 2 * n; k++) {
			ec_buf_free(src[k]);
			ec_buf_free(dst[k]);
			src[k] = NULL;
			dst[k] = NULL;
		}
	}
	ec_end(c, name, ret, it - 1);
}

/* ---- channel discovery ------------------------------------------------ */

static bool ec_is_edma_dev(struct device *dev)
{
	const struct device_driver *drv;

	if (!dev)
		return false;
	if (dev_is_pci(dev)) {
		struct pci_dev *pdev = to_pci_dev(dev);

		if (pdev->vendor == PCI_VENDOR_ID_SYNOPSYS &&
		    pdev->device == PCI_DEVICE_ID_SYNOPSYS_EDDA)
			return true;
	}
	drv = READ_ONCE(dev->driver);
	return drv && drv->name && !strncmp(drv->name, "dw-edma", 7);
}

static bool ec_filter(struct dma_chan *chan, void *param)
{
	struct ec_filter_arg *fa = param;

	/* All channels must come from the first dw-edma instance found. */
	if (fa->dma && chan->device != fa->dma)
		return false;
	return ec_is_edma_dev(chan->device->dev);
}

static int ec_discover(struct ec_ctx *c)
{
	struct ec_filter_arg fa = { };
	struct dma_slave_caps caps;
	struct dma_chan **all, *chan;
	unsigned int nall = 0, i;
	dma_cap_mask_t mask;

	all = kcalloc(EC_MAX_REQ, sizeof(*all), GFP_KERNEL);
	if (!all)
		return -ENOMEM;

	dma_cap_zero(mask);
	dma_cap_set(DMA_SLAVE, mask);
	while (nall < EC_MAX_REQ) {
		chan = dma_request_channel(mask, ec_filter, &fa);
		if (!chan)
			break;
		if (!fa.dma)
			fa.dma = chan->device;
		all[nall++] = chan;
	}

	if (nall) {
		c->rd = kcalloc(nall, sizeof(*c->rd), GFP_KERNEL);
		c->wr = kcalloc(nall, sizeof(*c->wr), GFP_KERNEL);
		if (!c->rd || !c->wr) {
			for (i = 0; i < nall; i++)
				dma_release_channel(all[i]);
			kfree(all);
			return -ENOMEM;
		}
		c->dma = fa.dma;
		c->dev = get_device(fa.dma->dev);
	}

	/* Released only after the request loop, or they would come back. */
	for (i = 0; i < nall; i++) {
		struct ec_chan *ch = NULL;

		chan = all[i];
		if (dma_get_slave_caps(chan, &caps))
			caps.directions = 0;
		if (caps.directions == BIT(DMA_MEM_TO_DEV) &&
		    (!channels || c->nrd < channels)) {
			ch = &c->rd[c->nrd];
			ch->idx = c->nrd++;
		} else if (caps.directions == BIT(DMA_DEV_TO_MEM) &&
			   (!channels || c->nwr < channels)) {
			ch = &c->wr[c->nwr];
			ch->idx = c->nwr++;
		}
		if (!ch) {
			dma_release_channel(chan);
			continue;
		}
		ch->chan = chan;
		ch->dir = caps.directions == BIT(DMA_MEM_TO_DEV) ?
			  DMA_MEM_TO_DEV : DMA_DEV_TO_MEM;
		INIT_LIST_HEAD(&ch->parked);
	}
	kfree(all);
	return 0;
}

static void ec_release_chan(struct ec_chan *ch)
{
	struct ec_xfer *x, *tmp;

	/* Terminates and synchronizes: no callback can run afterwards. */
	dma_release_channel(ch->chan);
	list_for_each_entry_safe(x, tmp, &ch->parked, node) {
		list_del(&x->node);
		x->buf->parked = false;
		ec_buf_free(x->buf);
		kfree(x);
	}
}

static void ec_release_all(struct ec_ctx *c)
{
	unsigned int i;

	for (i = 0; i < c->nrd; i++)
		ec_release_chan(&c->rd[i]);
	for (i = 0; i < c->nwr; i++)
		ec_release_chan(&c->wr[i]);
	kfree(c->rd);
	kfree(c->wr);
	put_device(c->dev);	/* NULL-safe */
}

/* ---- module ----------------------------------------------------------- */

static void ec_plan(struct ec_ctx *c)
{
	size_t need;
	unsigned int i;

	c->nsizes = 0;
	for (i = 0; i < ARRAY_SIZE(ec_base_sizes); i++)
		if (ec_base_sizes[i] <= max_size)
			c->sizes[c->nsizes++] = ec_base_sizes[i];
	if (!c->nsizes || c->sizes[c->nsizes - 1] != max_size)
		c->sizes[c->nsizes++] = max_size;

	c->npairs = max(c->nrd, c->nwr);

	need = max_t(size_t, max_size, EC_LL_SEGS * EC_LL_SEG_MAX);
	need = max_t(size_t, need, 4096 * 3 + 12 + 2 * EC_GUARD);
	c->stride = round_up((u64)need + EC_ITER_SPAN * EC_ITER_STEP, SZ_1M);

	c->conc_n = min_t(unsigned int, 2 * c->npairs, EC_CONC_MAX);
	c->conc_len = min_t(size_t, max_size, EC_CONC_LEN);
	c->conc_stride = round_up((u64)c->conc_len, SZ_64K);
	c->conc_base = dev_addr + c->npairs * c->stride;

	c->scratch_len = max(need, c->conc_len);
}

static int __init edma_check_init(void)
{
	struct ec_ctx *c;
	unsigned int i, p, total;
	int ret;

	if (!iterations || !max_size || max_size > SZ_64M) {
		pr_err("edma_check: need iterations >= 1 and 1 <= max_size <= 64 MiB\n");
		return -EINVAL;
	}

	c = kzalloc_obj(*c);
	if (!c)
		return -ENOMEM;
	c->salt = get_random_u32();
	c->prefix = "";

	ret = ec_discover(c);
	if (ret) {
		pr_err("edma_check: channel discovery failed: %d\n", ret);
		kfree(c);
		return ret;
	}

	if (!c->nrd || !c->nwr) {
		pr_info("KTAP version 1\n");
		pr_info("1..1\n");
		if (!c->nrd && !c->nwr)
			pr_info("not ok 1 edma_channels_found # no dw-edma channels\n");
		else
			pr_info("not ok 1 edma_channels_found # need both directions: found %u MEM_TO_DEV and %u DEV_TO_MEM dw-edma channels\n",
				c->nrd, c->nwr);
		pr_info("# edma_check: pass:0 fail:1\n");
		ec_release_all(c);
		kfree(c);
		return -ENODEV;
	}

	ec_plan(c);
	total = 1 + c->npairs * (c->nsizes + 1 + ARRAY_SIZE(ec_overrun_sizes)) + 1;

	pr_info("KTAP version 1\n");
	pr_info("1..%u\n", total);
	pr_info("# device %s (%s), %u MEM_TO_DEV + %u DEV_TO_MEM channels, %u pairs\n",
		dev_name(c->dev), dev_driver_string(c->dev), c->nrd, c->nwr,
		c->npairs);
	for (p = 0; p < c->npairs; p++)
		pr_info("# ch%u: MEM_TO_DEV %s, DEV_TO_MEM %s, device 0x%llx..0x%llx\n",
			p, dma_chan_name(ec_pair_rd(c, p)->chan),
			dma_chan_name(ec_pair_wr(c, p)->chan),
			dev_addr + p * c->stride,
			dev_addr + (p + 1) * c->stride - 1);
	pr_info("# concurrent: %u+%u regions of %zu bytes at device 0x%llx..0x%llx\n",
		c->conc_n, c->conc_n, c->conc_len, c->conc_base,
		c->conc_base + 2 * c->conc_n * c->conc_stride - 1);
	pr_info("# iterations=%u max_size=%u dev_addr=0x%llx channels=%u salt=0x%08x\n",
		iterations, max_size, dev_addr, channels, c->salt);

	c->exp = vzalloc(c->scratch_len);
	c->got = vzalloc(c->scratch_len);

	ec_begin(c);
	if (!c->exp || !c->got) {
		ec_reason(c, "out of memory for %zu-byte scratch buffers",
			  c->scratch_len);
		ec_end(c, "edma_channels_found", -ENOMEM, EC_NO_ITER);
		/* Every remaining planned test fails the same way. */
		while (c->test_no < total) {
			char name[32];

			ec_begin(c);
			ec_reason(c, "not run: out of memory");
			snprintf(name, sizeof(name), "edma_not_run_%u", c->test_no);
			ec_end(c, name, -ENOMEM, EC_NO_ITER);
		}
	} else {
		ec_end(c, "edma_channels_found", 0, EC_NO_ITER);
		for (p = 0; p < c->npairs; p++) {
			for (i = 0; i < c->nsizes; i++)
				ec_test_size(c, p, c->sizes[i]);
			ec_test_ll(c, p);
			for (i = 0; i < ARRAY_SIZE(ec_overrun_sizes); i++)
				ec_test_overrun(c, p, ec_overrun_sizes[i]);
		}
		ec_test_concurrent(c);
	}
	WARN_ON(c->test_no != total);
	pr_info("# edma_check: pass:%u fail:%u\n", c->pass, c->fail);

	ec_release_all(c);
	vfree(c->exp);
	vfree(c->got);
	kfree(c);
	return 0;
}

static void __exit edma_check_exit(void)
{
}

module_init(edma_check_init);
module_exit(edma_check_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Data-path check of a DesignWare eDMA through upstream dw-edma");
