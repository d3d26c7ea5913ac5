package bullmq

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

// crc16 is the CRC16-CCITT (XMODEM) checksum Redis Cluster uses for slots.
func crc16(b string) uint16 {
	var crc uint16
	for i := 0; i < len(b); i++ {
		crc ^= uint16(b[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// keySlot is Redis Cluster's CLUSTER KEYSLOT: the CRC16 of the hash tag
// (the text between the first "{" and the next "}", when not empty) or of
// the whole key, modulo 16384.
func keySlot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return crc16(key) % 16384
}

func TestKeySlot(t *testing.T) {
	// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
	if got := crc16("123456789"); got != 0x31C3 {
		t.Fatalf("crc16 = %#x, want 0x31c3", got)
	}
	for key, want := range map[string]uint16{"foo": 12182, "bar": 5061, "{user1000}.following": 3443, "foo{}{bar}": 8363, "foo{{bar}}zap": 4015} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
}

// allKeys returns every key string of k: its fields and those its methods
// build for a job id and a deduplication id.
func allKeys(k *keys) []string {
	var out []string
	v := reflect.ValueOf(k).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Name == "prefix" || f.Name == "queue" {
			continue
		}
		out = append(out, v.Field(i).String())
	}
	out = append(out, k.job("7"), k.lock("7"), k.logs("7"), k.dependencies("7"), k.processed("7"),
		k.failedChildren("7"), k.unsuccessful("7"), k.dedup("d"), k.dedupNext("d"), k.scheduler("s"), k.queueKey())
	for _, s := range AllStates {
		out = append(out, k.state(s))
	}
	return out
}

// TestKeysHashTag checks the Cluster rule: keys carry the hash tag the user
// put in the prefix or the queue name, all in one slot, and no tag is ever
// added when the user gave none.
func TestKeysHashTag(t *testing.T) {
	for _, tc := range []struct {
		prefix, name, tag string
	}{
		{"{bull}", "q", "{bull}"},
		{"", "{q}", "{q}"},
		{"app", "{claude-tasks}", "{claude-tasks}"},
		{"{bull}", "{q}", "{bull}"}, // the first tag wins, as in Redis
	} {
		k := newKeys(tc.prefix, tc.name)
		want := keySlot(tc.tag + "x")
		for _, key := range allKeys(k) {
			if !strings.Contains(key, tc.tag) {
				t.Errorf("prefix %q name %q: key %q lacks the tag %s", tc.prefix, tc.name, key, tc.tag)
			}
			if got := keySlot(key); got != want {
				t.Errorf("prefix %q name %q: key %q in slot %d, want %d", tc.prefix, tc.name, key, got, want)
			}
		}
	}
	for _, k := range []*keys{newKeys("", "q"), newKeys("bull", "claude-tasks")} {
		for _, key := range allKeys(k) {
			if strings.ContainsAny(key, "{}") {
				t.Errorf("untagged queue %s: key %q has a brace", k.queue, key)
			}
		}
	}
}

// scriptKeysRecorder is a go-redis hook that records the KEYS of every
// EVAL/EVALSHA sent, alone or in a pipeline.
type scriptKeysRecorder struct {
	mu    sync.Mutex
	calls [][]string
}

func (r *scriptKeysRecorder) record(cmd redis.Cmder) {
	args := cmd.Args()
	name := strings.ToLower(cmd.Name())
	if (name != "evalsha" && name != "eval") || len(args) < 3 {
		return
	}
	n, _ := args[2].(int)
	keys := make([]string, 0, n)
	for _, a := range args[3 : 3+n] {
		keys = append(keys, a.(string))
	}
	r.mu.Lock()
	r.calls = append(r.calls, keys)
	r.mu.Unlock()
}

func (r *scriptKeysRecorder) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *scriptKeysRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.record(cmd)
		return next(ctx, cmd)
	}
}

func (r *scriptKeysRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			r.record(c)
		}
		return next(ctx, cmds)
	}
}

// TestScriptCallsStayInOneSlot runs every Queue operation on a queue whose
// name carries a hash tag and checks that all KEYS of each script call hash
// to one slot, as Redis Cluster requires.
func TestScriptCallsStayInOneSlot(t *testing.T) {
	ctx := context.Background()
	bullmqtest.RedisAddr(t) // skip or fail without Redis
	c := redis.NewClient(bullmqtest.RedisOptions(t))
	defer c.Close()
	rec := &scriptKeysRecorder{}
	c.AddHook(rec)
	name := "{" + bullmqtest.QueueName(t, "slot") + "}"
	t.Cleanup(func() {
		q, _ := NewQueue(bullmqtest.RedisClient(t), name, nil)
		if err := q.Obliterate(context.Background(), true); err != nil {
			t.Errorf("obliterate %s: %v", name, err)
		}
	})
	q, err := NewQueue(c, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Add(ctx, "a", nil, &JobOptions{JobID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.AddBulk(ctx, make([]BulkJob, 600)); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Add(ctx, "d", nil, &JobOptions{Delay: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Add(ctx, "p", nil, &JobOptions{Priority: 3}); err != nil {
		t.Fatal(err)
	}
	if err := q.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Clean(ctx, 0, 1, StateWaiting); err != nil {
		t.Fatal(err)
	}
	if err := q.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Drain(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := q.Obliterate(ctx, true); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.calls) < 9 {
		t.Fatalf("recorded %d script calls, want at least 9", len(rec.calls))
	}
	want := keySlot(name)
	for _, keys := range rec.calls {
		for _, k := range keys {
			if got := keySlot(k); got != want || !strings.Contains(k, name) {
				t.Fatalf("script call keys %v: %q in slot %d, want %d", keys, k, got, want)
			}
		}
	}
}
