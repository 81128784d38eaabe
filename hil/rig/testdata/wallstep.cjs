// Preloaded (node -r) into a virtual board's host by TestVirtualBoardClock:
// Date.now here is the host's wall clock, and wallClockStep(ms) steps it
// at once, as NTP or an administrator can.
const realNow = Date.now;
let offset = 0;
Date.now = () => realNow() + offset;
globalThis.wallClockStep = (ms) => {
  offset += ms;
};
