#!/usr/bin/env python3
"""roles_gen.py BENCH_DIR N RUN: N distinct ORUs from testdata/bench, the mix of
app/e2e_bench_test.go's benchMessages (every fifth sensitive, 5,000 patients,
500 providers, unique order numbers), one per CR-terminated message."""
import sys, datetime
d, n, run = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rd = lambda f: open(f"{d}/{f}").read().rstrip("\n").replace("\n", "\r") + "\r"
labs = [rd("lab_cmp.hl7"), rd("lab_cbc.hl7")]
sens = [rd("path_surgical.hl7"), rd("imaging_ct.hl7")]
tz = datetime.timezone(datetime.timedelta(hours=-5))
now = datetime.datetime.now(tz)
obs = (now - datetime.timedelta(hours=2)).strftime("%Y%m%d%H%M%S-0500")
rpt = now.strftime("%Y%m%d%H%M%S-0500")
out = sys.stdout
for i in range(n):
    t = sens[(i // 5) % 2] if i % 5 == 4 else labs[i % 2]
    for k, v in (("{{CTRL}}", "X"), ("{{MRN}}", "BENCH%06d" % (i % 5000)),
                 ("{{PLACER}}", "PL%s%07d" % (run, i)), ("{{FILLER}}", "FL%s%07d" % (run, i)),
                 ("{{PROV}}", "DR%04d" % (i % 500)), ("{{OBS}}", obs), ("{{RPT}}", rpt)):
        t = t.replace(k, v)
    out.write(t)
