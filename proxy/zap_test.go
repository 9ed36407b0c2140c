package proxy

import (
	"io"

	"go.uber.org/zap/zapcore"
)

// discardCore encodes log entries as the node would, then drops them: the
// cost of logging is measured, not the disk.
func discardCore() zapcore.Core {
	return zapcore.NewCore(zapcore.NewJSONEncoder(zapcore.EncoderConfig{MessageKey: "msg", TimeKey: "time",
		EncodeTime: zapcore.ISO8601TimeEncoder, EncodeDuration: zapcore.SecondsDurationEncoder}),
		zapcore.AddSync(io.Discard), zapcore.InfoLevel)
}
