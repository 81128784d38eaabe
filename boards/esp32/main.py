# Runs at boot. On a board: the agent's loop, forever. Under the virtual
# board host (wasm MicroPython), the host calls agent.step and agent.line
# itself, so start() only sets the node up.
import sys
import agent

if sys.platform == "webassembly":
    agent.start()
else:
    agent.run()
