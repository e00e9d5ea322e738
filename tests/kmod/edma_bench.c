// SPDX-License-Identifier: GPL-2.0
/*
 * edma_bench: the peer in the `perf` scenario. Times transfers that upstream
 * dw-edma runs on the emulated DesignWare eDMA (the card with Synopsys IDs),
 * through the generic dmaengine slave API, so that the emulator's counts of
 * what one job costs (MMIO, interrupts, engine runs) can be set next to
 * metis's for the same size, direction and queue depth in the same boot.
 *
 * One run per load: `insmod edma_bench.ko size=65536 dir=to qd=4 iters=200`.
 * The module does its run in init, prints one result line and stays loaded
 * (rmmod it before the next run); a failed run fails the load.
 *
 * Host buffers are one page per segment, as for a user buffer without huge
 * pages. map=once maps them once for the whole run (registered memory);
 * map=job maps and unmaps each job's buffer around it, as a driver that
 * pins per request does.
 */
#include <linux/completion.h>
#include <linux/dma-mapping.h>
#include <linux/dmaengine.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/pci_ids.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/string.h>
#include <linux/timekeeping.h>

static unsigned int size = SZ_64K;
module_param(size, uint, 0444);
MODULE_PARM_DESC(size, "Bytes per job (4 .. 16 MiB)");

static char *dir = "to";
module_param(dir, charp, 0444);
MODULE_PARM_DESC(dir, "to (MEM_TO_DEV), from (DEV_TO_MEM) or bidir (both at once)");

static unsigned int qd = 1;
module_param(qd, uint, 0444);
MODULE_PARM_DESC(qd, "Jobs in flight per direction (1 .. 16)");

static unsigned int iters = 100;
module_param(iters, uint, 0444);
MODULE_PARM_DESC(iters, "Timed jobs per direction (1 .. 100000)");

static unsigned int warmup = 3;
module_param(warmup, uint, 0444);
MODULE_PARM_DESC(warmup, "Untimed jobs per direction first");

static char *map = "job";
module_param(map, charp, 0444);
MODULE_PARM_DESC(map, "job (map and unmap around each job) or once (for the run)");

static unsigned long long dev_addr = 0x01000000;
module_param(dev_addr, ullong, 0444);
MODULE_PARM_DESC(dev_addr, "Device-side address of every job");

#define EB_QD_MAX	16U
#define EB_SIZE_MAX	SZ_16M
#define EB_ITERS_MAX	100000U
#define EB_TIMEOUT_MS	10000U

struct eb_buf {
	struct sg_table sgt;
	struct page **pages;
	unsigned int npages;
	bool mapped;
};

struct eb_job {
	struct completion done;
	enum dmaengine_tx_result result;
	ktime_t t0;
	struct eb_buf *buf;
};

struct eb_stream {
	struct dma_chan *chan;
	enum dma_transfer_direction dir;
	enum dma_data_direction ddir;
	struct eb_buf *bufs[EB_QD_MAX];	/* map=job: one per slot; once: bufs[0] */
	struct eb_job jobs[EB_QD_MAX];
	unsigned int submitted, reaped, want;
	u64 *lat;			/* ns per timed job */
	unsigned int nlat;
	bool timing;
};

static bool eb_once;

static void eb_buf_free(struct device *dev, struct eb_buf *b, enum dma_data_direction d)
{
	unsigned int i;

	if (!b)
		return;
	if (b->mapped)
		dma_unmap_sgtable(dev, &b->sgt, d, 0);
	if (b->sgt.sgl)
		sg_free_table(&b->sgt);
	for (i = 0; i < b->npages; i++)
		__free_page(b->pages[i]);
	kfree(b->pages);
	kfree(b);
}

static struct eb_buf *eb_buf_alloc(size_t len)
{
	unsigned int n = DIV_ROUND_UP(len, PAGE_SIZE), i;
	struct scatterlist *sg;
	struct eb_buf *b;

	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return NULL;
	b->pages = kcalloc(n, sizeof(*b->pages), GFP_KERNEL);
	if (!b->pages)
		goto err;
	for (i = 0; i < n; i++) {
		b->pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!b->pages[i])
			goto err;
		b->npages++;
	}
	if (sg_alloc_table(&b->sgt, n, GFP_KERNEL)) {
		b->sgt.sgl = NULL;
		goto err;
	}
	for_each_sgtable_sg(&b->sgt, sg, i)
		sg_set_page(sg, b->pages[i], min_t(size_t, len - (size_t)i * PAGE_SIZE, PAGE_SIZE), 0);
	return b;
err:
	eb_buf_free(NULL, b, DMA_NONE);
	return NULL;
}

static bool eb_filter(struct dma_chan *chan, void *param)
{
	enum dma_transfer_direction *want = param;
	struct device *dev = chan->device->dev;
	struct dma_slave_caps caps;
	struct pci_dev *pdev;

	if (!dev || !dev_is_pci(dev))
		return false;
	pdev = to_pci_dev(dev);
	if (pdev->vendor != PCI_VENDOR_ID_SYNOPSYS || pdev->device != PCI_DEVICE_ID_SYNOPSYS_EDDA)
		return false;
	if (dma_get_slave_caps(chan, &caps))
		return false;
	return caps.directions == BIT(*want);
}

static void eb_done(void *param, const struct dmaengine_result *res)
{
	struct eb_job *j = param;

	j->result = res ? res->result : DMA_TRANS_NOERROR;
	complete(&j->done);
}

static int eb_submit(struct eb_stream *s)
{
	unsigned int slot = s->submitted % qd;
	struct eb_job *j = &s->jobs[slot];
	struct device *dev = s->chan->device->dev;
	struct dma_async_tx_descriptor *tx;
	struct eb_buf *b = s->bufs[eb_once ? 0 : slot];
	dma_cookie_t cookie;
	int ret;

	init_completion(&j->done);
	j->buf = b;
	j->t0 = ktime_get();
	if (!eb_once) {
		ret = dma_map_sgtable(dev, &b->sgt, s->ddir, 0);
		if (ret)
			return ret;
		b->mapped = true;
	}
	tx = dmaengine_prep_slave_sg(s->chan, b->sgt.sgl, b->sgt.nents, s->dir,
				     DMA_PREP_INTERRUPT | DMA_CTRL_ACK);
	if (!tx)
		return -EIO;
	tx->callback_result = eb_done;
	tx->callback_param = j;
	cookie = dmaengine_submit(tx);
	if (dma_submit_error(cookie))
		return -EIO;
	dma_async_issue_pending(s->chan);
	s->submitted++;
	return 0;
}

static int eb_reap(struct eb_stream *s)
{
	struct eb_job *j = &s->jobs[s->reaped % qd];
	struct device *dev = s->chan->device->dev;
	u64 ns;

	if (!wait_for_completion_timeout(&j->done, msecs_to_jiffies(EB_TIMEOUT_MS)))
		return -ETIMEDOUT;
	ns = ktime_to_ns(ktime_sub(ktime_get(), j->t0));
	if (!eb_once && j->buf->mapped) {
		dma_unmap_sgtable(dev, &j->buf->sgt, s->ddir, 0);
		j->buf->mapped = false;
	}
	if (j->result != DMA_TRANS_NOERROR)
		return -EIO;
	if (s->timing && s->nlat < iters)
		s->lat[s->nlat++] = ns;
	s->reaped++;
	return 0;
}

/* Runs `count` jobs on every stream, `qd` in flight on each. */
static int eb_phase(struct eb_stream *st, unsigned int n, unsigned int count, bool timing)
{
	unsigned int i, busy;
	int ret = 0;

	for (i = 0; i < n; i++) {
		st[i].want = st[i].reaped + count;
		st[i].timing = timing;
	}
	do {
		busy = 0;
		for (i = 0; i < n && !ret; i++) {
			struct eb_stream *s = &st[i];

			while (!ret && s->submitted < s->want && s->submitted - s->reaped < qd)
				ret = eb_submit(s);
			if (!ret && s->reaped < s->want)
				ret = eb_reap(s);
			busy |= s->reaped < s->want;
		}
	} while (busy && !ret);
	return ret;
}

static int eb_cmp(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

static void eb_stop(struct eb_stream *s)
{
	unsigned int i;

	if (!s->chan)
		return;
	/* No callback runs after this; buffers can go. */
	dmaengine_terminate_sync(s->chan);
	for (i = 0; i < EB_QD_MAX; i++)
		eb_buf_free(s->chan->device->dev, s->bufs[i], s->ddir);
	dma_release_channel(s->chan);
	kfree(s->lat);
}

static int eb_open(struct eb_stream *s, enum dma_transfer_direction d)
{
	struct dma_slave_config cfg = { };
	dma_cap_mask_t mask;
	unsigned int i, nbufs = eb_once ? 1 : qd;
	int ret;

	s->dir = d;
	s->ddir = d == DMA_MEM_TO_DEV ? DMA_TO_DEVICE : DMA_FROM_DEVICE;
	dma_cap_zero(mask);
	dma_cap_set(DMA_SLAVE, mask);
	s->chan = dma_request_channel(mask, eb_filter, &d);
	if (!s->chan) {
		pr_err("edma_bench: no dw-edma %s channel: load dw-edma-pcie on the Synopsys card first\n",
		       d == DMA_MEM_TO_DEV ? "MEM_TO_DEV" : "DEV_TO_MEM");
		return -ENODEV;
	}
	s->lat = kcalloc(iters, sizeof(*s->lat), GFP_KERNEL);
	if (!s->lat)
		return -ENOMEM;
	for (i = 0; i < nbufs; i++) {
		s->bufs[i] = eb_buf_alloc(size);
		if (!s->bufs[i])
			return -ENOMEM;
	}
	if (eb_once) {
		ret = dma_map_sgtable(s->chan->device->dev, &s->bufs[0]->sgt, s->ddir, 0);
		if (ret)
			return ret;
		s->bufs[0]->mapped = true;
	}
	cfg.direction = d;
	cfg.src_addr_width = DMA_SLAVE_BUSWIDTH_4_BYTES;
	cfg.dst_addr_width = DMA_SLAVE_BUSWIDTH_4_BYTES;
	if (d == DMA_MEM_TO_DEV)
		cfg.dst_addr = dev_addr;
	else
		cfg.src_addr = dev_addr;
	return dmaengine_slave_config(s->chan, &cfg);
}

static int __init edma_bench_init(void)
{
	struct eb_stream st[2] = { };
	unsigned int n = 0, i;
	ktime_t t0;
	u64 total;
	int ret;

	if (size < 4 || size > EB_SIZE_MAX || !qd || qd > EB_QD_MAX || !iters ||
	    iters > EB_ITERS_MAX) {
		pr_err("edma_bench: need 4 <= size <= 16 MiB, 1 <= qd <= 16, 1 <= iters <= 100000\n");
		return -EINVAL;
	}
	if (!strcmp(map, "once"))
		eb_once = true;
	else if (strcmp(map, "job")) {
		pr_err("edma_bench: map is job or once, not %s\n", map);
		return -EINVAL;
	}
	if (!strcmp(dir, "to") || !strcmp(dir, "bidir"))
		ret = eb_open(&st[n++], DMA_MEM_TO_DEV);
	else if (!strcmp(dir, "from"))
		ret = 0;
	else {
		pr_err("edma_bench: dir is to, from or bidir, not %s\n", dir);
		return -EINVAL;
	}
	if (!ret && (!strcmp(dir, "from") || !strcmp(dir, "bidir")))
		ret = eb_open(&st[n++], DMA_DEV_TO_MEM);
	if (!ret)
		ret = eb_phase(st, n, warmup, false);
	t0 = ktime_get();
	if (!ret)
		ret = eb_phase(st, n, iters, true);
	total = ktime_to_ns(ktime_sub(ktime_get(), t0));
	if (!ret) {
		u64 *all = kcalloc(n * iters, sizeof(*all), GFP_KERNEL);
		unsigned int k = 0;

		if (!all) {
			ret = -ENOMEM;
		} else {
			for (i = 0; i < n; i++) {
				memcpy(all + k, st[i].lat, st[i].nlat * sizeof(*all));
				k += st[i].nlat;
			}
			sort(all, k, sizeof(*all), eb_cmp, NULL);
			pr_info("edma_bench: size=%u dir=%s qd=%u map=%s jobs=%u total_ns=%llu min_ns=%llu median_ns=%llu p99_ns=%llu\n",
				size, dir, qd, map, k, total, all[0], all[k / 2],
				all[min(k - 1, (k * 99 + 99) / 100 - 1)]);
			kfree(all);
		}
	}
	if (ret)
		pr_err("edma_bench: size=%u dir=%s qd=%u map=%s failed: %d\n", size, dir, qd, map, ret);
	for (i = 0; i < 2; i++)
		eb_stop(&st[i]);
	/*
	 * The outcome is the line above, never the return value: busybox
	 * insmod loads a module again (init_module) when finit_module fails,
	 * so a failed run would run twice and its jobs count twice.
	 */
	return 0;
}

static void __exit edma_bench_exit(void)
{
}

module_init(edma_bench_init);
module_exit(edma_bench_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Timing and per-job cost of upstream dw-edma on a DesignWare eDMA (perf scenario peer)");
