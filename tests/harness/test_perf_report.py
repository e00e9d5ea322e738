"""perf_report's arithmetic on made-up snapshots: `python3 -m unittest` in tests/harness."""
import unittest

import perf_report


def snap(t, writes, reads, msis, runs, elements, nbytes, maps=0):
    return {"t_ns": t, "mmio_classes": {"edma": {"reads": reads, "writes": writes - 10},
                                        "bar2": {"reads": 0, "writes": 10}},
            "irqs_sent": {"msi0": msis},
            "channels": {"rd0": {"doorbells": runs, "runs": runs, "elements": elements,
                                 "links": 0, "list_bytes": 0, "bytes": nbytes}},
            "dma_maps": maps, "dma_unmaps": maps, "dma_map_bytes": 0,
            "link": {"spec": "gen1x1", "payload_bytes_per_sec": 228.57e6,
                     "wire_ns": {"upstream": 0, "downstream": 0}}}


class PerJob(unittest.TestCase):
    def setUp(self):
        # Fixed cost of a run: 100 writes, 7 reads, 2 MSIs (alloc, warm-up...); per job:
        # 14 writes, 2 reads, 1 MSI, 1 run, 2 elements, 4096 bytes.
        def run(n, base):
            return snap(base, 100 + 14 * n, 7 + 2 * n, 2 + n, n, 2 * n, 4096 * n)
        zero = snap(0, 0, 0, 0, 0, 0, 0)
        cell = "peer=metis size=4096 dir=to qd=1 buf=page link=gen1x1 n1=2 n2=12"
        self.snaps = [
            {"card": 0, "label": cell + "#a0", "snap": zero},
            {"card": 0, "label": cell + "#a1", "snap": run(2, 1)},
            {"card": 0, "label": cell + "#b0", "snap": zero},
            {"card": 0, "label": cell + "#b1", "snap": run(12, 2)},
        ]
        self.text = ("@@PERF " + cell + ' {"results":[{"mb_per_s":100.0,"median_us":40.0,'
                     '"p99_us":50.0,"irqs_per_job":1.0}]}\n')

    def test_layouts_that_differ_between_runs_leave_overhead_exact(self):
        # The short run's buffer has 5 elements per job, the long run's 1: per-job
        # writes come out wrong, writes beyond the elements do not.
        def run(n, elems, base):
            return snap(base, 100 + (6 * elems + 3) * n, 7 + n, 2 + n, n, elems * n, 4096 * n)
        zero = snap(0, 0, 0, 0, 0, 0, 0)
        cell = "peer=metis size=4096 dir=to qd=1 buf=page link=unlimited n1=2 n2=12"
        snaps = [{"card": 0, "label": cell + "#a0", "snap": zero},
                 {"card": 0, "label": cell + "#a1", "snap": run(2, 5, 1)},
                 {"card": 0, "label": cell + "#b0", "snap": zero},
                 {"card": 0, "label": cell + "#b1", "snap": run(12, 1, 2)}]
        [row] = perf_report.cells(snaps, "")
        self.assertAlmostEqual(row["per_job"]["overhead_writes"], 3)
        self.assertAlmostEqual(row["elements"], 12 / 14)

    def test_fixed_costs_cancel(self):
        [row] = perf_report.cells(self.snaps, self.text)
        j = row["per_job"]
        self.assertEqual((j["mmio_writes"], j["mmio_reads"], j["msis"]), (14, 2, 1))
        self.assertEqual((j["engine_runs"], j["elements"], j["bytes"]), (1, 2, 4096))
        self.assertEqual(row["jobs"], 10)
        self.assertEqual(row["floor"]["mmio_writes"], 6 * 2 + 2)
        # 14 writes for 2 elements: 2 beyond the elements' 12 words.
        self.assertEqual(j["overhead_writes"], 2)
        # The long run's own elements per job: 24 over its 12 + 2 warm-up jobs.
        self.assertAlmostEqual(row["elements"], 24 / 14)
        self.assertAlmostEqual(row["link_share"], 100.0 / 228.57, places=3)

    def test_checks_pass_and_fail(self):
        class Res:
            def __init__(self):
                self.passed, self.failed, self.notes = [], [], []
        res = Res()
        rows = perf_report.cells(self.snaps, self.text)
        perf_report.check(rows, res)
        self.assertEqual(len(res.passed), 2, res.failed)
        for got, fails in (("2.0", True), ("0.5", True), ("1.02", False)):
            text = self.text.replace('"irqs_per_job":1.0', f'"irqs_per_job":{got}')
            res = Res()
            perf_report.check(perf_report.cells(self.snaps, text), res)
            self.assertEqual(len(res.failed), int(fails), (got, res.failed))
        # With jobs in flight, interrupts merge: fewer taken than sent is fine, more is not.
        for s in self.snaps:
            s["label"] = s["label"].replace("qd=1", "qd=4")
        for got, fails in (("0.5", False), ("1.5", True)):
            text = self.text.replace("qd=1", "qd=4").replace('"irqs_per_job":1.0',
                                                              f'"irqs_per_job":{got}')
            res = Res()
            perf_report.check(perf_report.cells(self.snaps, text), res)
            self.assertEqual(len(res.failed), int(fails), (got, res.failed))

    def test_a_batch_is_held_to_one_doorbell_and_one_interrupt(self):
        class Res:
            def __init__(self):
                self.passed, self.failed, self.notes = [], [], []

        # Batches of 8 one-element jobs; per batch: `per_batch` doorbells and interrupts.
        def snaps(per_batch):
            def run(batches, base):
                return snap(base, 100 + (6 * 8 + 3) * batches, 7 + batches, per_batch * batches,
                            per_batch * batches, 8 * batches, 8 * 4096 * batches)
            zero = snap(0, 0, 0, 0, 0, 0, 0)
            cell = "peer=metis size=4096 dir=to qd=1 buf=registered link=unlimited n1=8 n2=88 batch=8"
            return [{"card": 0, "label": cell + "#a0", "snap": zero},
                    {"card": 0, "label": cell + "#a1", "snap": run(1 + 2, 1)},
                    {"card": 0, "label": cell + "#b0", "snap": zero},
                    {"card": 0, "label": cell + "#b1", "snap": run(11 + 2, 2)}]
        [row] = perf_report.cells(snaps(1), "")
        j = row["per_job"]
        self.assertEqual(row["jobs"], 80)
        self.assertAlmostEqual(j["msis"], 1 / 8)
        self.assertAlmostEqual(j["overhead_writes"], 3 / 8)
        self.assertAlmostEqual(row["floor"]["msis"], 1 / 8)
        # The warm-up is two batches: 8 elements per batch over 8 jobs.
        self.assertAlmostEqual(row["elements"], 1)
        res = Res()
        perf_report.check([row], res)
        self.assertIn("perf.peermetis_size4096_dirto_qd1_bufregistered_linkunlimited_batch8"
                      "_one_doorbell_one_interrupt", res.passed)
        self.assertEqual(res.failed, [])
        res = Res()
        perf_report.check(perf_report.cells(snaps(2), ""), res)
        self.assertEqual(len(res.failed), 1, res.failed)
        self.assertIn("rang 2.00 doorbells", res.failed[0])
        self.assertIn("| 4K | to | 1 | unlimited | registered | 8 | 1 |",
                      perf_report.table([row]))

    def test_jobs_longer_than_the_ring_are_not_held_to_the_guest_count(self):
        class Res:
            def __init__(self):
                self.passed, self.failed, self.notes = [], [], []
        [row] = perf_report.cells(self.snaps, self.text.replace('"irqs_per_job":1.0',
                                                                '"irqs_per_job":3.0'))
        row["elements"] = 4096
        res = Res()
        perf_report.check([row], res)
        self.assertEqual(res.failed, [])
        # Either run's jobs may be the long ones.
        row["elements"], row["elements_short"] = 1, 4096
        res = Res()
        perf_report.check([row], res)
        self.assertEqual(res.failed, [])

    def test_a_missing_guest_count_fails(self):
        class Res:
            def __init__(self):
                self.passed, self.failed, self.notes = [], [], []
        res = Res()
        perf_report.check(perf_report.cells(self.snaps, self.text.replace(
            '"irqs_per_job":1.0', '"irqs_per_job":null')), res)
        self.assertEqual(len(res.failed), 1)
        self.assertIn("could not count", res.failed[0])

    def test_bidir_counts_both_directions(self):
        for s in self.snaps:
            s["label"] = s["label"].replace("dir=to", "dir=bidir")
        [row] = perf_report.cells(self.snaps, "")
        self.assertEqual(row["jobs"], 20)
        self.assertEqual(row["per_job"]["bytes"], 2048)

    def test_incomplete_cells_are_left_out(self):
        self.assertEqual(perf_report.cells(self.snaps[:3], self.text), [])

    def test_table_pairs_metis_with_dw_edma(self):
        peer = [dict(s, card=1, label=s["label"].replace("peer=metis", "peer=dw-edma")
                     .replace("buf=page", "buf=job")) for s in self.snaps]
        rows = perf_report.cells(self.snaps + peer, self.text)
        md = perf_report.table(rows)
        line = [l for l in md.splitlines() if l.startswith("| 4K")][0]
        # metis: 14 - 6*2 = 2 writes beyond the elements; dw-edma: 14 - 4*2 = 6.
        self.assertIn("| 2 / 2 / 1 / 1 / 0 | 6 / 2 / 1 / 1 / 0 | 0.33 / 1 / 1 | 2 / 1 / 1 |", line)


if __name__ == "__main__":
    unittest.main()
