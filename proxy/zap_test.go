package proxy

import (
	"io"

	"github.com/edge-cdn/edge/internal/logtime"
	"go.uber.org/zap/zapcore"
)

// discardCore encodes log entries as the node would (its access core),
// then drops them: the cost of logging is measured, not the disk.
func discardCore() zapcore.Core {
	return NewAccessCore(zapcore.NewJSONEncoder(zapcore.EncoderConfig{MessageKey: "msg", TimeKey: "time",
		EncodeTime: logtime.ISO8601, EncodeDuration: zapcore.SecondsDurationEncoder}),
		zapcore.AddSync(io.Discard), zapcore.InfoLevel, true)
}
