"""`lgbpn bench`: time, peak memory and arithmetic efficiency of our inference path against the
reference's test path (same weights), for LG-BPN and AP-BSN, and training speed in float32 and
bfloat16, on one machine in one run.

Every measured case runs in a process of its own, forked from a server that has imported torch and
the case code and done nothing else, so the peak resident memory a row reports is that case's alone
(it includes the ~torch baseline, reported as `machine.baseline_rss_mb`). Multiply-adds are counted
with torch's FLOP counter on meta tensors: counting costs no arithmetic, and it counts exactly the
work the timed call does (tile overlaps, PD padding, the reference's quadrant overlaps included).
Weights are random and seeded: the time a network takes does not depend on its weights.
The reference path runs with R3 off only (R3 repeats the same kind of pass eight more times), and
not above 256x256, where it needs more memory than a 24 GiB machine has.

`--compare` is a run of its own: our student and teacher beside what a user would pick instead
(OpenCV's non-local means, BM3D, Open Image Denoise, where installed), each timed on one 12 MP photo
in a process of its own and scored on the same images, plus `lgbpn denoise` on that photo end to end.

Modules: `plan` (what runs), `cases` (one measurement, inside its process), `macs` (counting),
`harness` (running the plan, one process per case), `compare` (the --compare run) and `alternatives`
(its denoisers, inside their processes), `report` (tables, JSON, the --compare plot), `command` (the CLI).
This package imports nothing heavy, so `lgbpn` commands other than `bench` do not pay for it.
"""
