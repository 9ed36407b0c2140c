package node

import (
	"io"
	"log"
	"time"

	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/internal/logtime"
	"github.com/edge-cdn/edge/proxy"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newLogger builds the node's logger: JSON for machines or console for
// people, to w, at the configured level.
func newLogger(c config.LogConfig, w io.Writer) (*zap.Logger, error) {
	lvl, err := zap.ParseAtomicLevel(c.Level)
	if err != nil {
		return nil, err
	}
	return zap.New(zapcore.NewCore(encoder(c), zapcore.Lock(zapcore.AddSync(w)), lvl)), nil
}

// newAccessLogger builds the access log: the same format and output, at
// info whatever log.level says (log.access alone turns it on or off), with
// writes buffered (flushed every second and at exit) so that a request
// costs no write system call of its own.
func newAccessLogger(c config.LogConfig, w io.Writer) (*zap.Logger, func()) {
	ws := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(w), Size: 256 << 10, FlushInterval: time.Second}
	// proxy.NewAccessCore is zapcore.NewCore with the same bytes, the
	// proxy's access lines written cheaper (the time is logtime's: its
	// text changes once per millisecond).
	return zap.New(proxy.NewAccessCore(encoder(c), ws, zapcore.InfoLevel, true)), func() { _ = ws.Stop() }
}

func encoder(c config.LogConfig) zapcore.Encoder {
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "time"
	ec.EncodeTime = logtime.ISO8601 // zapcore.ISO8601TimeEncoder's text, formatted once per ms
	if c.Format == "console" {
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		return zapcore.NewConsoleEncoder(ec)
	}
	return zapcore.NewJSONEncoder(ec)
}

// stdLogAt adapts l for a standard library *log.Logger writing at lvl.
func stdLogAt(l *zap.Logger, lvl zapcore.Level) *log.Logger {
	sl, err := zap.NewStdLogAt(l, lvl)
	if err != nil {
		return zap.NewStdLog(l)
	}
	return sl
}
