package conditions

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"
)

// Limits of a condition: its length, its nesting, and the cost of one evaluation (CEL's units,
// about one per operation and per element a macro visits).
const (
	MaxLength = 2048
	maxDepth  = 32
	CostLimit = 10_000
)

// The variables a condition can name: the envelope's fields, data as parsed JSON.
var env = func() *cel.Env {
	e, err := cel.NewEnv(
		cel.Variable("id", cel.StringType),
		cel.Variable("type", cel.StringType),
		cel.Variable("source", cel.StringType),
		cel.Variable("entity", cel.StringType),
		cel.Variable("occurred_at", cel.TimestampType),
		cel.Variable("data", cel.DynType),
		cel.CrossTypeNumericComparisons(true), // data's numbers are doubles: `setpoint < -18` must work
		cel.ParserExpressionSizeLimit(MaxLength),
		cel.ParserRecursionLimit(maxDepth),
	)
	if err != nil {
		panic(fmt.Sprintf("conditions: CEL environment: %v", err)) // fixed at build time
	}
	return e
}()

// Condition is a compiled condition; safe for concurrent use.
type Condition struct {
	src string
	prg cel.Program
}

// Compile checks and compiles src. Its error says what is wrong and where (line:column).
func Compile(src string) (*Condition, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("is empty")
	}
	if len(src) > MaxLength {
		return nil, fmt.Errorf("is %d bytes, more than %d", len(src), MaxLength)
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, errors.New(issues(iss.Err().Error()))
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
		return nil, fmt.Errorf("gives %s, not a bool", t)
	}
	prg, err := env.Program(ast, cel.CostLimit(CostLimit), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, err
	}
	return &Condition{src: src, prg: prg}, nil
}

// issues shortens cel-go's report: "ERROR: <input>:1:5: undeclared reference to 'x' (in
// container ”)" and a picture of the line, for each problem, to "1:5: undeclared reference to
// 'x'", one per line.
func issues(report string) string {
	var out []string
	for _, line := range strings.Split(report, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "ERROR: ") {
			continue
		}
		line = strings.TrimPrefix(strings.TrimPrefix(line, "ERROR: "), "<input>:")
		line = strings.TrimSuffix(line, " (in container '')")
		out = append(out, line)
	}
	if len(out) == 0 {
		return report
	}
	return strings.Join(out, "; ")
}

// String is the condition as written.
func (c *Condition) String() string { return c.src }

// Match evaluates the condition for ev. An error (a missing field, a type mismatch, the cost
// limit) is returned as such: the caller decides, and counts it apart from a plain no.
func (c *Condition) Match(ev *Event) (bool, error) {
	out, _, err := c.prg.Eval(ev)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("gave %v, not a bool", out.Type())
	}
	return b, nil
}

// Event is what a condition sees of one event. One Event serves every endpoint the event goes
// to: its data is parsed once, on first use.
type Event struct {
	ID, Type, Source, Entity string
	OccurredAt               time.Time
	body                     []byte // the envelope as published: data is read from it

	once sync.Once
	data any
	err  error
}

var _ interpreter.Activation = (*Event)(nil)

// NewEvent is the event whose envelope fields are given and whose body (the envelope as
// published) holds its data.
func NewEvent(id, typ, source, entity string, occurredAt time.Time, body []byte) *Event {
	return &Event{ID: id, Type: typ, Source: source, Entity: entity, OccurredAt: occurredAt, body: body}
}

// ResolveName gives a condition's variables; data is parsed the first time a condition asks.
func (e *Event) ResolveName(name string) (any, bool) {
	switch name {
	case "id":
		return e.ID, true
	case "type":
		return e.Type, true
	case "source":
		return e.Source, true
	case "entity":
		return e.Entity, true
	case "occurred_at":
		return e.OccurredAt, true
	case "data":
		e.once.Do(func() {
			var v struct {
				Data any `json:"data"`
			}
			e.err = json.Unmarshal(e.body, &v)
			e.data = v.Data
		})
		if e.err != nil {
			return nil, false
		}
		return e.data, true
	}
	return nil, false
}

// Parent is none: an Event is the whole activation.
func (e *Event) Parent() interpreter.Activation { return nil }
