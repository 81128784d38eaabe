# Run under `node host/vboard.mjs exec`: the vectors against the codec, and
# the codec's memory. Prints one JSON line the Go test reads.
import gc
import json
import sys

sys.path.insert(0, "/fw")
sys.path.insert(0, "/tests")
import vectors  # noqa: E402

p, bad = vectors.run("/vectors")
print(json.dumps({"passed": p, "failed": len(bad), "failures": bad[:20], "platform": sys.platform}))
try:
    import vhost
    vhost.exit(1 if bad else 0)
except ImportError:
    sys.exit(1 if bad else 0)
