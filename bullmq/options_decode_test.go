package bullmq

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

// optsShapes are "opts" JSON inputs with whether the fast path must take
// them (true) or leave them to the generic path (false).
var optsShapes = []struct {
	in   string
	fast bool
}{
	// Encoded by our MarshalJSON (TestJobOptionsEncode) and by Node.
	{`{"attempts":0}`, true},
	{`{"attempts":3,"backoff":{"delay":2000,"type":"exponential"},"removeOnComplete":{"age":3600,"count":1000}}`, true},
	{`{"attempts":2,"de":{"id":"x"},"delay":1500,"jobId":"a/b<c>","kl":5,"lifo":true,"priority":7,` +
		`"removeOnComplete":true,"removeOnFail":false,"timestamp":1700000000000}`, true},
	{`{"attempts":3,"backoff":{"type":"exponential","delay":2000},"removeOnComplete":{"age":3600,"count":1000},"delay":0,"timestamp":1764244800123}`, true},
	{`{"attempts":1,"jobId":"task-1","removeOnComplete":100,"removeOnFail":{"age":86400},"kl":10,"fpof":true,"rdof":false}`, true},
	{`{"attempts":1,"parent":{"id":"p1","queue":"bull:q"},"repeat":{"every":1000,"count":2,"pattern":null},"stackTraceLimit":10}`, true},
	{`{"backoff":{"type":"exponential","delay":200,"jitter":0.25},"removeOnFail":{"age":1.5,"count":0,"limit":10}}`, true},
	// TestJobOptionsDecodeAnyShape.
	{`{"attempts":"3","backoff":2000,"delay":100,"lifo":false,"removeOnComplete":{"age":10},` +
		`"removeOnFail":7,"priority":3,"fpof":true,"repeat":{"every":1000},"weird":null}`, true},
	{`{"attempts":[1],"backoff":"soon"}`, true},
	// Odd but common enough: whitespace, nulls, empty, strings as numbers.
	{" \n{ \"attempts\" : 3 ,\t\"delay\":null , \"x\" : [ 1 , {\"a\" : [] } ] } \r\n", true},
	{`{}`, true},
	{`{"backoff":{}}`, true},
	{`{"backoff":{"type":null,"delay":null,"jitter":null}}`, true},
	{`{"backoff":"1500","removeOnComplete":"5","priority":"x","timestamp":true,"jobId":7,"lifo":"true"}`, true},
	{`{"removeOnComplete":{"age":null,"other":{"deep":[true,false,null]}},"removeOnFail":[]}`, true},
	{`{"attempts":1e400,"delay":-0,"priority":1.5e2,"timestamp":-1,"kl":-0.5E-3,"y":"ünï"}`, true},
	{`{"attempts":"NaN","backoff":{"type":"fixed","jitter":"NaN","delay":"inf"}}`, true},
	{`{"attempts":12345678901234567890,"delay":"0x10","priority":"007","removeOnFail":"-"}`, true},
	{`{"extra":"with \"escapes\" \u00e9 \n","k\u00e9y":1}`, false},
	// Left to the generic path.
	{`null`, false},
	{`{"attempts":1,"attempts":2}`, false},
	{`{"jobId":"a\"b"}`, false},
	{`{"jobId":"\u0061"}`, false},
	{`{"backoff":{"Type":"fixed"}}`, false},
	{`{"backoff":{"type":1}}`, false},
	{`{"backoff":{"delay":true}}`, false},
	{`{"removeOnComplete":{"age":1,"age":2}}`, false},
	{`{"removeOnComplete":{"age":"x"}}`, false},
	{"{\"jobId\":\"\xff\"}", false},
	{`{"attempts":1,}`, false},
	{`{"attempts":01}`, false},
	{`{"attempts":1} x`, false},
	{`{"attempts":-}`, false},
	{`[1]`, false},
	{``, false},
}

// sameOpts reports whether a and b are identical, bit for bit in floats
// (so NaN equals NaN, and 0 differs from -0).
func sameOpts(a, b JobOptions) bool {
	if a.Backoff != nil && b.Backoff != nil {
		if math.Float64bits(a.Backoff.Jitter) != math.Float64bits(b.Backoff.Jitter) {
			return false
		}
		ca, cb := *a.Backoff, *b.Backoff
		ca.Jitter, cb.Jitter = 0, 0
		a.Backoff, b.Backoff = &ca, &cb
	}
	return reflect.DeepEqual(a, b)
}

// checkFastDecode decodes in with both paths and fails t when the fast path
// takes the input and decodes it differently; it returns whether it took it.
func checkFastDecode(t *testing.T, in []byte) bool {
	t.Helper()
	var slow JobOptions
	slowErr := slow.decodeGeneric(in)
	buf := append([]byte(nil), in...)
	var fast JobOptions
	if !fast.decodeFast(buf) {
		return false
	}
	for i := range buf {
		buf[i] = 'X' // the result must not alias the input
	}
	if slowErr != nil {
		t.Fatalf("fast path accepted %q, generic path refused it: %v", in, slowErr)
	}
	if !sameOpts(fast, slow) {
		t.Fatalf("decode %q:\nfast    %#v\ngeneric %#v", in, fast, slow)
	}
	var via JobOptions
	if err := via.UnmarshalJSON(in); err != nil || !sameOpts(via, slow) {
		t.Fatalf("UnmarshalJSON(%q) = %#v, %v", in, via, err)
	}
	return true
}

func TestJobOptionsFastDecode(t *testing.T) {
	for _, tt := range optsShapes {
		t.Run(tt.in, func(t *testing.T) {
			if got := checkFastDecode(t, []byte(tt.in)); got != tt.fast {
				t.Fatalf("fast path taken = %v, want %v", got, tt.fast)
			}
			// Whatever the path, UnmarshalJSON matches the generic path.
			var slow, via JobOptions
			slowErr := slow.decodeGeneric([]byte(tt.in))
			viaErr := via.UnmarshalJSON([]byte(tt.in))
			if (slowErr == nil) != (viaErr == nil) || !sameOpts(via, slow) {
				t.Fatalf("UnmarshalJSON = %#v, %v; generic %#v, %v", via, viaErr, slow, slowErr)
			}
		})
	}
}

func FuzzJobOptionsDecode(f *testing.F) {
	for _, tt := range optsShapes {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkFastDecode(t, in)
		// Random bytes are rarely valid JSON: also build an "opts" object
		// from the bytes, as a series of choices, to exercise the fast path.
		g := optsGen{choices: in}
		checkFastDecode(t, g.object(0))
	})
}

// optsGen builds JSON objects from a series of choices, with the keys and
// values that "opts" decoding treats specially.
type optsGen struct {
	choices []byte
	out     []byte
}

var (
	genKeys = []string{"attempts", "backoff", "delay", "jobId", "lifo", "priority", "removeOnComplete",
		"removeOnFail", "timestamp", "type", "jitter", "age", "count", "limit", "kl", "Type", "x"}
	genAtoms = []string{`0`, `-0`, `1`, `3`, `1.5`, `-2`, `1e400`, `12345678901234567`, `2E-3`, `"5"`, `"x"`, `""`,
		`"NaN"`, `"-"`, `" 1"`, `"0x10"`, `"a\"b"`, `"\u00e9"`, `"ü"`, `"exponential"`, `"fixed"`, `true`, `false`,
		`null`, `[]`, `[1,"a"]`, `{}`}
	genSpace = []string{"", "", "", " ", "\n "}
)

// next returns the next choice below n (0 when the choices run out).
func (g *optsGen) next(n int) int {
	if len(g.choices) == 0 {
		return 0
	}
	c := int(g.choices[0])
	g.choices = g.choices[1:]
	return c % n
}

func (g *optsGen) object(depth int) []byte {
	g.out = append(g.out, genSpace[g.next(len(genSpace))]...)
	g.out = append(g.out, '{')
	for i, n := 0, g.next(6); i < n; i++ {
		if i > 0 {
			g.out = append(g.out, ',')
		}
		g.out = append(g.out, genSpace[g.next(len(genSpace))]...)
		g.out = append(g.out, '"')
		g.out = append(g.out, genKeys[g.next(len(genKeys))]...)
		g.out = append(g.out, '"', ':')
		if depth < 2 && g.next(4) == 0 {
			g.object(depth + 1)
		} else {
			g.out = append(g.out, genAtoms[g.next(len(genAtoms))]...)
		}
	}
	g.out = append(g.out, '}')
	return g.out
}

// BenchmarkDecodeOpts decodes the seed options as a worker does per job.
func BenchmarkDecodeOpts(b *testing.B) {
	in, err := json.Marshal(seedOptions())
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		decode func(*JobOptions, []byte) error
	}{
		{"fast", (*JobOptions).UnmarshalJSON},
		{"generic", (*JobOptions).decodeGeneric},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var o JobOptions
				if err := bc.decode(&o, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
