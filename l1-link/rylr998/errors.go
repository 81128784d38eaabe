package rylr998

import (
	"errors"
	"strconv"
)

// ModuleError is an error the module reported with +ERR=<n>. The value is
// the module's error number, so errors.Is(err, ErrTxNotCompleted) matches
// whatever wraps a +ERR=17.
type ModuleError int

// The module's error numbers, with the meanings its AT command guide gives
// (RYLR998/RYLR498 guide, 2021, 2023 and 2025 editions: 1, 2, 4, 5, 10,
// 12–15 and 17–20). 3 and 11 come from the earlier RYLR896 guide: an
// RYLR998 is not documented to send them, and the emulator never does, but
// the driver still names them if one comes.
const (
	ErrNoCRLF          ModuleError = 1  // no CR LF at the end of the command
	ErrNotAT           ModuleError = 2  // the command does not start with "AT"
	ErrNoEquals        ModuleError = 3  // no "=" in the command (RYLR896 guide only)
	ErrUnknownCommand  ModuleError = 4  // unknown command
	ErrLengthMismatch  ModuleError = 5  // AT+SEND data does not match the declared length
	ErrTxOverTimes     ModuleError = 10 // TX is over times
	ErrRxOverTimes     ModuleError = 11 // RX is over times (RYLR896 guide only)
	ErrCRC             ModuleError = 12 // CRC error
	ErrTxTooLong       ModuleError = 13 // TX data exceeds 240 bytes
	ErrFlash           ModuleError = 14 // failed to write flash memory
	ErrUnknownFailure  ModuleError = 15 // unknown failure
	ErrTxNotCompleted  ModuleError = 17 // the last TX was not completed: the radio is still sending
	ErrPreamble        ModuleError = 18 // preamble value not allowed
	ErrRxHeader        ModuleError = 19 // RX failed, header error
	ErrSmartModeTiming ModuleError = 20 // AT+MODE=2 time values not allowed
)

// moduleErrorText holds the guides' wording for each number.
var moduleErrorText = map[ModuleError]string{
	ErrNoCRLF:          `there is no "enter" (0x0D 0x0A) at the end of the AT command`,
	ErrNotAT:           `the head of the AT command is not the "AT" string`,
	ErrNoEquals:        `there is no "=" symbol in the AT command (RYLR896 guide; not in the RYLR998's)`,
	ErrUnknownCommand:  "unknown command",
	ErrLengthMismatch:  "the data to be sent does not match the actual length",
	ErrTxOverTimes:     "TX is over times",
	ErrRxOverTimes:     "RX is over times (RYLR896 guide; not in the RYLR998's)",
	ErrCRC:             "CRC error",
	ErrTxTooLong:       "TX data exceeds 240 bytes",
	ErrFlash:           "failed to write flash memory",
	ErrUnknownFailure:  "unknown failure",
	ErrTxNotCompleted:  "last TX was not completed",
	ErrPreamble:        "preamble value is not allowed",
	ErrRxHeader:        "RX failed, header error",
	ErrSmartModeTiming: `the time setting value of the "smart receiving power saving mode" is not allowed`,
}

// ModuleErrors lists every number the RYLR998 guide documents, in order.
var ModuleErrors = []ModuleError{
	ErrNoCRLF, ErrNotAT, ErrUnknownCommand, ErrLengthMismatch, ErrTxOverTimes,
	ErrCRC, ErrTxTooLong, ErrFlash, ErrUnknownFailure, ErrTxNotCompleted,
	ErrPreamble, ErrRxHeader, ErrSmartModeTiming,
}

// Error returns "rylr998: +ERR=<n>: <the guide's meaning>".
func (e ModuleError) Error() string {
	s := "rylr998: +ERR=" + strconv.Itoa(int(e)) + ": "
	if t, ok := moduleErrorText[e]; ok {
		return s + t
	}
	return s + "undocumented error number"
}

// Documented reports whether the RYLR998 guide lists the number.
func (e ModuleError) Documented() bool {
	for _, d := range ModuleErrors {
		if d == e {
			return true
		}
	}
	return false
}

// Errors of the driver itself.
var (
	// ErrTimeout: the module did not answer a command in time.
	ErrTimeout = errors.New("rylr998: module did not answer in time")
	// ErrReset: the module reset (+READY) while a command was in flight.
	ErrReset = errors.New("rylr998: module reset during the command")
	// ErrConfig: the Config is not one the module accepts.
	ErrConfig = errors.New("rylr998: invalid configuration")
	// ErrUnexpected: the module answered with something the command does not
	// expect (a query answered for another setting, say).
	ErrUnexpected = errors.New("rylr998: unexpected answer")
)

// CommandError says which command failed; it unwraps to a ModuleError,
// ErrTimeout, ErrReset or the port's error.
type CommandError struct {
	Cmd string // the command, without its data for AT+SEND
	Err error
}

// Error returns "rylr998: AT+XXX: cause".
func (e *CommandError) Error() string {
	return "rylr998: " + e.Cmd + ": " + trimPrefix(e.Err.Error())
}

// Unwrap returns the cause.
func (e *CommandError) Unwrap() error { return e.Err }

func trimPrefix(s string) string {
	const p = "rylr998: "
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
