package subjects

import (
	"fmt"
	"strings"
)

// ReplayPrefix is the first token of a replayed event's subject:
// replay.<endpoint>.<source>.<type>. A dead-lettered event that an operator replays is published
// again to the events stream under this subject, so that it reaches only its own endpoint, through
// the same consumer, lanes and ack as any other event.
const (
	ReplayPrefix          = "replay"
	ReplayStreamSubjects  = "replay.>"
	replayTokens          = 4
	replaySubjectTemplate = ReplayPrefix + ".<endpoint>.<source>.<type>"
)

// HeaderOrigin is the subject a replay's original was stored on (evt.…, tnt.… or quaycast.ops.…).
// quaycast sets it on every replay it makes — a replayed dead letter, a redelivered event — and
// only quaycast may publish on replay.>: the check at delivery trusts it to tell a genuine
// operator event's replay from a copy of an event that claimed to be one
// (ReplayReservedReason).
const HeaderOrigin = "Quaycast-Origin-Subject"

// ReplaySubject is the subject a replayed event for endpointID is published to. The endpoint id
// is encoded with EncodeToken.
func ReplaySubject(endpointID, source, typ string) (string, error) {
	s, err := Subject(source, typ)
	if err != nil {
		return "", err
	}
	return ReplayPrefix + "." + EncodeToken(endpointID) + strings.TrimPrefix(s, Prefix), nil
}

// ReplayFilter is the filter subject that catches every replay for endpointID.
func ReplayFilter(endpointID string) string {
	return ReplayPrefix + "." + EncodeToken(endpointID) + ".>"
}

// ParseAny splits an event subject (evt.<source>.<type>), a tenant copy's
// (tnt.<tenant>.<source>.<type>, see TenantOf), an operator event's (quaycast.ops.<type> or
// quaycast.ops.<tenant>.<type>, of source OpsSource, see OpsTenantOf) or a replay subject
// (replay.<endpoint>.<source>.<type>); endpointID is empty but for a replay. Errors wrap
// ErrBadSubject.
func ParseAny(subject string) (endpointID, source, typ string, err error) {
	if IsOpsSubject(subject) {
		_, typ, err = parseOpsSubject(subject)
		if err != nil {
			return "", "", "", err
		}
		return "", OpsSource, typ, nil
	}
	if strings.HasPrefix(subject, TenantPrefix+".") {
		_, source, typ, err = parseTenantSubject(subject)
		return "", source, typ, err
	}
	if !strings.HasPrefix(subject, ReplayPrefix+".") {
		source, typ, err = Parse(subject)
		return "", source, typ, err
	}
	parts := strings.Split(subject, ".")
	if len(parts) != replayTokens {
		return "", "", "", badSubject(subject, fmt.Sprintf("want %d tokens %s, got %d", replayTokens, replaySubjectTemplate, len(parts)))
	}
	if endpointID, err = DecodeToken(parts[1]); err != nil {
		return "", "", "", badSubject(subject, "endpoint token is not encoded")
	}
	source, typ, err = Parse(Prefix + "." + parts[2] + "." + parts[3])
	return endpointID, source, typ, err
}
