package interop

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// addSpec is one job added the same way from Go and from Node.
type addSpec struct {
	name     string
	data     map[string]any
	goOpts   *bullmq.JobOptions
	nodeOpts map[string]any
	bulk     bool // part of the AddBulk / addBulk batch
}

// fixedTS is a creation time given explicitly with the timestamp option.
var fixedTS = time.UnixMilli(1_700_000_000_123)

// addSpecs lists jobs in the order they are added. Their expected processing
// order by one worker at concurrency 1 is processOrder (the delayed jobs are
// checked apart).
func addSpecs() []addSpec {
	seed := func() *bullmq.JobOptions {
		return &bullmq.JobOptions{Attempts: 3, Backoff: &bullmq.Backoff{Type: "exponential", Delay: 2 * time.Second},
			RemoveOnComplete: bullmq.KeepFor(time.Hour, 1000)}
	}
	seedNode := map[string]any{"attempts": 3, "backoff": map[string]any{"type": "exponential", "delay": 2000},
		"removeOnComplete": map[string]any{"age": 3600, "count": 1000}}
	return []addSpec{
		{name: "std1", data: map[string]any{"n": 1, "s": "héllo <&> \"q\"", "nested": map[string]any{"a": []any{1, 2.5, "x", nil, true}}}},
		{name: "std2", data: map[string]any{"n": 2}, goOpts: seed(), nodeOpts: seedNode},
		{name: "std3", data: map[string]any{"n": 3}, goOpts: &bullmq.JobOptions{Attempts: 2, Backoff: &bullmq.Backoff{Type: "fixed", Delay: 500 * time.Millisecond}},
			nodeOpts: map[string]any{"attempts": 2, "backoff": 500}},
		{name: "custom", data: map[string]any{"n": 4}, goOpts: &bullmq.JobOptions{JobID: "custom-a", Attempts: 2},
			nodeOpts: map[string]any{"jobId": "custom-a", "attempts": 2}},
		{name: "b1", bulk: true, data: map[string]any{"n": 5}},
		{name: "b2", bulk: true, data: map[string]any{"n": 6}, goOpts: &bullmq.JobOptions{Attempts: 5, Backoff: &bullmq.Backoff{Type: "exponential", Delay: 100 * time.Millisecond, Jitter: 0.5}},
			nodeOpts: map[string]any{"attempts": 5, "backoff": map[string]any{"type": "exponential", "delay": 100, "jitter": 0.5}}},
		{name: "b3", bulk: true, data: map[string]any{"n": 7}, goOpts: &bullmq.JobOptions{JobID: "bulk-c"}, nodeOpts: map[string]any{"jobId": "bulk-c"}},
		{name: "r1", data: map[string]any{"n": 8}, goOpts: &bullmq.JobOptions{RemoveOnComplete: bullmq.RemoveAll(), RemoveOnFail: bullmq.KeepLast(5)},
			nodeOpts: map[string]any{"removeOnComplete": true, "removeOnFail": 5}},
		{name: "r2", data: map[string]any{"n": 9}, goOpts: &bullmq.JobOptions{RemoveOnComplete: &bullmq.KeepJobs{Age: time.Minute, Count: 10, Limit: 100}, RemoveOnFail: bullmq.KeepAll()},
			nodeOpts: map[string]any{"removeOnComplete": map[string]any{"age": 60, "count": 10, "limit": 100}, "removeOnFail": false}},
		{name: "r3", data: map[string]any{"n": 10}, goOpts: &bullmq.JobOptions{RemoveOnComplete: bullmq.KeepLast(0), RemoveOnFail: bullmq.KeepFor(2*time.Hour, 0)},
			nodeOpts: map[string]any{"removeOnComplete": 0, "removeOnFail": map[string]any{"age": 7200}}},
		{name: "ts", data: map[string]any{"n": 11}, goOpts: &bullmq.JobOptions{Timestamp: fixedTS}, nodeOpts: map[string]any{"timestamp": fixedTS.UnixMilli()}},
		{name: "lifo", data: map[string]any{"n": 12}, goOpts: &bullmq.JobOptions{LIFO: true}, nodeOpts: map[string]any{"lifo": true}},
		{name: "p3", data: map[string]any{"n": 13}, goOpts: &bullmq.JobOptions{Priority: 3}, nodeOpts: map[string]any{"priority": 3}},
		{name: "p1", data: map[string]any{"n": 14}, goOpts: &bullmq.JobOptions{Priority: 1, Attempts: 2}, nodeOpts: map[string]any{"priority": 1, "attempts": 2}},
		{name: "p2a", data: map[string]any{"n": 15}, goOpts: &bullmq.JobOptions{Priority: 2}, nodeOpts: map[string]any{"priority": 2}},
		{name: "p2b", data: map[string]any{"n": 16}, goOpts: &bullmq.JobOptions{Priority: 2, LIFO: true}, nodeOpts: map[string]any{"priority": 2, "lifo": true}},
		{name: "delayedprio", data: map[string]any{"n": 18}, goOpts: &bullmq.JobOptions{Delay: 200 * time.Millisecond, Priority: 5}, nodeOpts: map[string]any{"delay": 200, "priority": 5}},
		{name: "delayed", data: map[string]any{"n": 17}, goOpts: &bullmq.JobOptions{Delay: 300 * time.Millisecond, Attempts: 2}, nodeOpts: map[string]any{"delay": 300, "attempts": 2}},
	}
}

var processOrder = []string{"lifo", "std1", "std2", "std3", "custom", "b1", "b2", "b3", "r1", "r2", "r3", "ts", "p1", "p2a", "p2b", "p3"}

// addFromGo adds specs to q in order (bulk ones in one AddBulk) and returns
// the job ids by spec name.
func addFromGo(t *testing.T, q *bullmq.Queue, specs []addSpec) map[string]string {
	t.Helper()
	ctx := ctxT(t)
	ids := map[string]string{}
	var bulk []bullmq.BulkJob
	var bulkNames []string
	flush := func() {
		if len(bulk) == 0 {
			return
		}
		jobs, err := q.AddBulk(ctx, bulk)
		if err != nil {
			t.Fatalf("AddBulk: %v", err)
		}
		if len(jobs) != len(bulk) {
			t.Fatalf("AddBulk returned %d jobs for %d", len(jobs), len(bulk))
		}
		for i, j := range jobs {
			ids[bulkNames[i]] = j.ID
		}
		bulk, bulkNames = nil, nil
	}
	for _, s := range specs {
		if s.bulk {
			bulk = append(bulk, bullmq.BulkJob{Name: s.name, Data: s.data, Opts: s.goOpts})
			bulkNames = append(bulkNames, s.name)
			continue
		}
		flush()
		j, err := q.Add(ctx, s.name, s.data, s.goOpts)
		if err != nil {
			t.Fatalf("Add %s: %v", s.name, err)
		}
		ids[s.name] = j.ID
	}
	flush()
	return ids
}

// addFromNode adds specs through the official Queue, the same way.
func (e *env) addFromNode(queue, version string, specs []addSpec) map[string]string {
	e.t.Helper()
	var ops []map[string]any
	var names [][]string
	var bulk []map[string]any
	var bulkNames []string
	flush := func() {
		if len(bulk) > 0 {
			ops = append(ops, op("addBulk", "jobs", bulk))
			names = append(names, bulkNames)
			bulk, bulkNames = nil, nil
		}
	}
	for _, s := range specs {
		j := map[string]any{"name": s.name, "data": s.data, "opts": s.nodeOpts}
		if s.bulk {
			bulk = append(bulk, j)
			bulkNames = append(bulkNames, s.name)
			continue
		}
		flush()
		ops = append(ops, op("add", "name", s.name, "data", s.data, "opts", s.nodeOpts))
		names = append(names, []string{s.name})
	}
	flush()
	res := e.ops(queue, version, ops...)
	ids := map[string]string{}
	for i, r := range res {
		if len(names[i]) == 1 && ops[i]["op"] == "add" {
			var id string
			mustUnmarshal(e.t, r, &id)
			ids[names[i][0]] = id
			continue
		}
		var got []string
		mustUnmarshal(e.t, r, &got)
		for k, id := range got {
			ids[names[i][k]] = id
		}
	}
	return ids
}

func mustUnmarshal(tb testing.TB, b []byte, v any) {
	tb.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("decode %s: %v", b, err)
	}
}

func newQueue(t *testing.T, e *env, name string) *bullmq.Queue {
	t.Helper()
	q, err := bullmq.NewQueue(e.rdb, name, &bullmq.QueueOptions{Prefix: e.prefix})
	if err != nil {
		t.Fatalf("NewQueue: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// TestGoAddMatchesNode adds the same jobs from Go and from the official
// Queue to two fresh queues and compares the Redis state field by field:
// job hashes (opts deep-equal), lists, scores, counters, marker and events.
// Then an official Worker processes the Go jobs, in the right order and with
// the right data.
func TestGoAddMatchesNode(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			e := newEnv(t)
			goName, nodeName := e.queue("add-go"), e.queue("add-node")
			q := newQueue(t, e, goName)
			specs := addSpecs()
			goIDs := addFromGo(t, q, specs)
			nodeIDs := e.addFromNode(nodeName, v, specs)

			for _, s := range specs {
				if goIDs[s.name] != nodeIDs[s.name] {
					t.Errorf("%s: Go id %q, Node id %q", s.name, goIDs[s.name], nodeIDs[s.name])
				}
			}
			e.compareHashes(t, goName, nodeName, specs, goIDs, nodeIDs)
			e.compareQueueKeys(t, goName, nodeName)

			// An official worker processes the Go jobs.
			w := e.startNode(t, "worker.js", e.cfg(goName, v, nil))
			var order []string
			starts := map[string]line{}
			for _, l := range w.waitN(20*time.Second, "job starts", len(specs), isEv("start", "")) {
				var s struct {
					Name string `json:"name"`
				}
				l.decode(t, &s)
				starts[s.Name] = l
				if !strings.HasPrefix(s.Name, "delayed") {
					order = append(order, s.Name)
				}
			}
			w.waitN(10*time.Second, "completions", len(specs), isEv("completed", ""))
			if n := w.count(isEv("start", "")); n != len(specs) {
				t.Errorf("%d starts for %d jobs", n, len(specs))
			}
			if strings.Join(order, ",") != strings.Join(processOrder, ",") {
				t.Errorf("processing order\n got %v\nwant %v", order, processOrder)
			}
			for _, s := range specs {
				var got struct {
					ID   string          `json:"id"`
					Data json.RawMessage `json:"data"`
					Opts json.RawMessage `json:"opts"`
				}
				starts[s.name].decode(t, &got)
				if got.ID != goIDs[s.name] {
					t.Errorf("%s: worker saw id %s, want %s", s.name, got.ID, goIDs[s.name])
				}
				if !jsonEqual(got.Data, mustJSON(t, s.data)) {
					t.Errorf("%s: worker saw data %s, want %s", s.name, got.Data, mustJSON(t, s.data))
				}
			}
			// The delayed job ran no earlier than it was due.
			ctx := ctxT(t)
			h, err := e.rdb.HGetAll(ctx, e.key(goName, goIDs["delayed"])).Result()
			if err != nil {
				t.Fatal(err)
			}
			ts, _ := strconv.ParseInt(h["timestamp"], 10, 64)
			if starts["delayed"].T < ts+300 {
				t.Errorf("delayed job started at %d, due at %d", starts["delayed"].T, ts+300)
			}
			// Retention: r1 (removeOnComplete true) and r3 (0) are gone.
			for _, n := range []string{"r1", "r3"} {
				if ex, _ := e.rdb.Exists(ctx, e.key(goName, goIDs[n])).Result(); ex != 0 {
					t.Errorf("%s kept after completion despite removeOnComplete", n)
				}
			}
		})
	}
}

// volatileFields differ between two queues filled at different times.
var volatileFields = map[string]bool{"timestamp": true}

// compareHashes compares the job hash of every spec in both queues.
func (e *env) compareHashes(t *testing.T, goName, nodeName string, specs []addSpec, goIDs, nodeIDs map[string]string) {
	t.Helper()
	ctx := ctxT(t)
	for _, s := range specs {
		gh, err := e.rdb.HGetAll(ctx, e.key(goName, goIDs[s.name])).Result()
		if err != nil {
			t.Fatal(err)
		}
		nh, err := e.rdb.HGetAll(ctx, e.key(nodeName, nodeIDs[s.name])).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(gh) == 0 || len(nh) == 0 {
			t.Errorf("%s: missing hash (go %d fields, node %d fields)", s.name, len(gh), len(nh))
			continue
		}
		for k, nv := range nh {
			gv, ok := gh[k]
			switch {
			case !ok:
				t.Errorf("%s: Go hash lacks field %q (node: %q)", s.name, k, nv)
			case k == "opts" || k == "data":
				if !jsonEqual([]byte(gv), []byte(nv)) {
					t.Errorf("%s: %s differs\n  go:   %s\n  node: %s", s.name, k, gv, nv)
				}
			case volatileFields[k] && s.name != "ts":
				if _, err := strconv.ParseInt(gv, 10, 64); err != nil {
					t.Errorf("%s: Go %s %q is not an integer", s.name, k, gv)
				}
			case gv != nv:
				t.Errorf("%s: field %s: go %q, node %q", s.name, k, gv, nv)
			}
		}
		for k, gv := range gh {
			if _, ok := nh[k]; !ok {
				t.Errorf("%s: Go hash has extra field %q = %q", s.name, k, gv)
			}
		}
	}
}

// compareQueueKeys compares the queue-level keys of both queues.
func (e *env) compareQueueKeys(t *testing.T, goName, nodeName string) {
	t.Helper()
	ctx := ctxT(t)
	// Same key types everywhere.
	for _, suffix := range []string{"wait", "paused", "prioritized", "delayed", "pc", "id", "marker", "events", "meta", "active"} {
		gt, _ := e.rdb.Type(ctx, e.key(goName, suffix)).Result()
		nt, _ := e.rdb.Type(ctx, e.key(nodeName, suffix)).Result()
		if gt != nt {
			t.Errorf("key %s: go type %s, node type %s", suffix, gt, nt)
		}
	}
	lr := func(q, k string) []string {
		v, err := e.rdb.LRange(ctx, e.key(q, k), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if g, n := lr(goName, "wait"), lr(nodeName, "wait"); strings.Join(g, ",") != strings.Join(n, ",") {
		t.Errorf("wait list: go %v, node %v", g, n)
	}
	zr := func(q, k string) []redis.Z {
		v, err := e.rdb.ZRangeWithScores(ctx, e.key(q, k), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if g, n := zr(goName, "prioritized"), zr(nodeName, "prioritized"); fmt.Sprint(g) != fmt.Sprint(n) {
		t.Errorf("prioritized: go %v, node %v", g, n)
	}
	// Delayed: same members, score = (timestamp+delay)*4096 + n.
	for _, q := range []string{goName, nodeName} {
		for _, z := range zr(q, "delayed") {
			h, _ := e.rdb.HMGet(ctx, e.key(q, z.Member.(string)), "timestamp", "delay").Result()
			ts, _ := strconv.ParseInt(fmt.Sprint(h[0]), 10, 64)
			d, _ := strconv.ParseInt(fmt.Sprint(h[1]), 10, 64)
			if int64(z.Score)/4096 != ts+d {
				t.Errorf("%s delayed %s: score %v/4096 = %d, want timestamp+delay %d", q, z.Member, z.Score, int64(z.Score)/4096, ts+d)
			}
		}
	}
	if g, n := len(zr(goName, "delayed")), len(zr(nodeName, "delayed")); g != n {
		t.Errorf("delayed count: go %d, node %d", g, n)
	}
	// Marker: same members; "0" has score 0, "1" (if any) the next due time.
	gm, nm := zr(goName, "marker"), zr(nodeName, "marker")
	if len(gm) != len(nm) {
		t.Errorf("marker: go %v, node %v", gm, nm)
	} else {
		for i := range gm {
			if gm[i].Member != nm[i].Member || (gm[i].Member == "0" && gm[i].Score != 0) {
				t.Errorf("marker: go %v, node %v", gm, nm)
			}
		}
	}
	for _, k := range []string{"id", "pc"} {
		g, _ := e.rdb.Get(ctx, e.key(goName, k)).Result()
		n, _ := e.rdb.Get(ctx, e.key(nodeName, k)).Result()
		if g != n {
			t.Errorf("%s counter: go %q, node %q", k, g, n)
		}
	}
	g, _ := e.rdb.HGet(ctx, e.key(goName, "meta"), "opts.maxLenEvents").Result()
	n, _ := e.rdb.HGet(ctx, e.key(nodeName, "meta"), "opts.maxLenEvents").Result()
	if g != n {
		t.Errorf("meta opts.maxLenEvents: go %q, node %q", g, n)
	}
	// Events: same sequence; delayed events' "delay" is an absolute time.
	ev := func(q string) []string {
		xs, err := e.rdb.XRange(ctx, e.key(q, "events"), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range xs {
			var parts []string
			for _, k := range sortedKeys(x.Values) {
				val := fmt.Sprint(x.Values[k])
				if k == "delay" {
					val = "<time>"
				}
				parts = append(parts, k+"="+val)
			}
			out = append(out, strings.Join(parts, " "))
		}
		return out
	}
	ge, ne := ev(goName), ev(nodeName)
	if strings.Join(ge, "\n") != strings.Join(ne, "\n") {
		t.Errorf("events differ\n go:\n  %s\n node:\n  %s", strings.Join(ge, "\n  "), strings.Join(ne, "\n  "))
	}
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j] < ks[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return ks
}

// waitBlocked waits until a client whose name contains the queue's base64
// name is blocked in BZPOPMIN: the worker is idle on the marker.
func (e *env) waitBlocked(t *testing.T, queue string) {
	t.Helper()
	ctx := ctxT(t)
	b64 := base64.StdEncoding.EncodeToString([]byte(queue))
	testenv.Eventually(t, 10*time.Second, "worker blocked on the marker", func() error {
		list, err := e.rdb.ClientList(ctx).Result()
		if err != nil {
			return err
		}
		for _, c := range strings.Split(list, "\n") {
			if strings.Contains(c, b64) && strings.Contains(c, "cmd=bzpopmin") {
				return nil
			}
		}
		return errNotYet
	})
}

// TestIdleNodeWorkerWakesOnGoAdd shows that Go writes the marker: an idle
// official worker blocked for 5 s on BZPOPMIN starts a Go job (and a Go
// delayed job once due) within a second.
func TestIdleNodeWorkerWakesOnGoAdd(t *testing.T) {
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			e := newEnv(t)
			name := e.queue("idle")
			q := newQueue(t, e, name)
			ctx := ctxT(t)
			w := e.startNode(t, "worker.js", e.cfg(name, v, map[string]any{"drainDelay": 5}))
			w.waitEv(10*time.Second, "ready", "")
			e.waitBlocked(t, name)

			t0 := time.Now()
			j, err := q.Add(ctx, "wake", map[string]any{"x": 1}, nil)
			if err != nil {
				t.Fatal(err)
			}
			w.waitEv(time.Second, "start", j.ID)
			t.Logf("standard job started %s after Add", time.Since(t0))
			w.waitEv(5*time.Second, "completed", j.ID)

			e.waitBlocked(t, name)
			t0 = time.Now()
			d, err := q.Add(ctx, "wake-delayed", map[string]any{"x": 2}, &bullmq.JobOptions{Delay: 400 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			l := w.waitEv(1400*time.Millisecond, "start", d.ID)
			if got := time.UnixMilli(l.T).Sub(d.Timestamp); got < 400*time.Millisecond {
				t.Errorf("delayed job started %s after its timestamp, before its 400ms delay", got)
			}
			t.Logf("delayed job (400ms) started %s after Add", time.Since(t0))
		})
	}
}
