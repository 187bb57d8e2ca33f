package gateway

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// natsLogger sends the embedded server's log lines to zerolog; its notices are debug-level noise
// for a gateway operator. Its fatal errors (a port in use, JetStream not starting) also go to
// fatal, when set, so that start-up fails at once instead of waiting for a server that will never
// be ready.
type natsLogger struct {
	log   zerolog.Logger
	fatal chan<- string // buffered; a message that does not fit is only logged
}

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug().Msgf(format, v...) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn().Msgf(format, v...) }
func (l natsLogger) Errorf(format string, v ...any)  { l.log.Error().Msgf(format, v...) }
func (l natsLogger) Debugf(format string, v ...any)  { l.log.Trace().Msgf(format, v...) }
func (l natsLogger) Tracef(format string, v ...any)  { l.log.Trace().Msgf(format, v...) }

func (l natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error().Msg(msg)
	if l.fatal != nil {
		select {
		case l.fatal <- msg:
		default:
		}
	}
}

// natsClientOptions route a NATS connection's asynchronous errors — a write to a server that died,
// a slow consumer, a permission or authorization error while reconnecting — through log. Without
// an error handler nats.go writes them to stderr as plain lines, which breaks --log-format json.
func natsClientOptions(log zerolog.Logger) []nats.Option {
	return []nats.Option{
		nats.ErrorHandler(func(c *nats.Conn, sub *nats.Subscription, err error) {
			ev := log.Warn()
			if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrPermissionViolation) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) {
				ev = log.Error() // an operator must act: quaycast's NATS credential or permissions
			}
			if c != nil {
				ev = ev.Str("connection", c.Opts.Name) // quaycast has two: see connect
			}
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Err(err).Msg("NATS error")
		}),
	}
}
