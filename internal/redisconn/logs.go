package redisconn

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// RouteInternalLogs sends go-redis' own log lines (it logs every refused
// dial by itself) to logger at debug level: the processes already warn,
// with backoff, when Redis is down. go-redis' logger is process-wide, so
// only main calls this, once.
func RouteInternalLogs(logger *slog.Logger) {
	redis.SetLogger(internalLogger{logger.With("component", "go-redis")})
}

type internalLogger struct{ log *slog.Logger }

func (l internalLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...))
}
