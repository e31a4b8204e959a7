# Figure 7 of the benchmark (host/benches/pipeline.rs): the least a Python
# connector must spend on the same data, with the standard library only:
# json.loads of every TAP body figure 3 fetched, and json.dumps of every
# ThreatQ request body it sent. Each file is read and (for ThreatQ) parsed
# outside the timed part, one at a time, so memory stays bounded by the
# largest body. Prints one JSON line of CPU seconds (time.process_time).
import glob
import json
import sys
import time

folder = sys.argv[1]
tap_s = 0.0
tap_bytes = 0
for path in sorted(glob.glob(folder + "/tap-*.json")):
    with open(path, "rb") as f:
        body = f.read()
    tap_bytes += len(body)
    start = time.process_time()
    json.loads(body)
    tap_s += time.process_time() - start
threatq_s = 0.0
threatq_bytes = 0
for path in sorted(glob.glob(folder + "/threatq-*.json")):
    with open(path, "rb") as f:
        value = json.loads(f.read())
    start = time.process_time()
    text = json.dumps(value)
    threatq_s += time.process_time() - start
    threatq_bytes += len(text)
print(json.dumps({
    "tap_loads_cpu_s": tap_s,
    "tap_bytes": tap_bytes,
    "threatq_dumps_cpu_s": threatq_s,
    "threatq_bytes": threatq_bytes,
    "python": sys.version.split()[0],
}))
