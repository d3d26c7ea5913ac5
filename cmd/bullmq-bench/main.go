// Command bullmq-bench compares our bullmq package with the official Node
// BullMQ package on one local Redis, in one run:
//
//   - add: N jobs added one by one with 100 in flight, from Go and from the
//     official Node Queue, with the orchestrator's options (attempts 3,
//     exponential backoff 2000 ms, removeOnComplete {age 3600, count 1000});
//   - addbulk: N jobs added by Go AddBulk in batches;
//   - process: N no-op jobs processed by the official Node Worker and by our
//     Worker at concurrency 1 and 50, each worker in its own process; the Go
//     worker process reports its resident memory (VmRSS at the end and peak
//     VmHWM, from /proc/self/status).
//
// With -repeat, the process measurements run in rounds (Go, then each Node
// version) and each keeps its fastest run. Each process line also gives what
// the worker cost Redis per job (script time and CPU time), and a floor
// line the round trip of an empty script call at concurrency 1.
//
// It prints one JSON line per measurement and one per Go/Node ratio. The
// Node side runs the Node driver's bench.js and needs `make node-deps` (npm
// ci in test/node; flag -node-dir). Only a loopback Redis is accepted.
//
// Usage: go run ./cmd/bullmq-bench [-redis 127.0.0.1:6379] [-n 20000]
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
)

type config struct {
	redisAddr    string
	n            int
	inflight     int
	batch        int
	concurrency  []int
	nodeVersions []string
	nodeDir      string
	timeout      time.Duration
	skipNode     bool
	phases       map[string]bool
	cpuProfile   string
	repeat       int
}

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-worker-child" {
		if err := workerChild(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "bullmq-bench worker:", err)
			os.Exit(1)
		}
		return
	}
	var cfg config
	var conc, versions, phases string
	flag.StringVar(&cfg.redisAddr, "redis", "127.0.0.1:6379", "Redis address (loopback only)")
	flag.IntVar(&cfg.n, "n", 20000, "jobs per measurement (1..1000000)")
	flag.IntVar(&cfg.inflight, "inflight", 100, "adds in flight for the add benchmark")
	flag.IntVar(&cfg.batch, "batch", 1000, "jobs per AddBulk call")
	flag.StringVar(&conc, "concurrency", "1,50", "worker concurrencies to measure")
	flag.StringVar(&versions, "node-versions", "6,5", "official package versions to compare with (5, 6)")
	flag.StringVar(&cfg.nodeDir, "node-dir", "test/node", "folder with the Node driver's bench.js and node_modules")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	flag.BoolVar(&cfg.skipNode, "skip-node", false, "measure Go only")
	flag.IntVar(&cfg.repeat, "repeat", 1, "run each measurement this many times (1..5) and keep the fastest; memory is the highest seen")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write CPU profiles: the producer side to this file, each Go worker to <file>.worker-c<concurrency>")
	flag.StringVar(&phases, "phases", "add,addbulk,process", "which measurements to run")
	flag.Parse()
	for _, c := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 || n > 1000 {
			fatal(fmt.Errorf("bad -concurrency %q", conc))
		}
		cfg.concurrency = append(cfg.concurrency, n)
	}
	cfg.phases = map[string]bool{}
	for _, p := range strings.Split(phases, ",") {
		p = strings.TrimSpace(p)
		if p != "add" && p != "addbulk" && p != "process" {
			fatal(fmt.Errorf("bad -phases %q", phases))
		}
		cfg.phases[p] = true
	}
	for _, v := range strings.Split(versions, ",") {
		v = strings.TrimSpace(v)
		if v != "5" && v != "6" {
			fatal(fmt.Errorf("bad -node-versions %q", versions))
		}
		cfg.nodeVersions = append(cfg.nodeVersions, v)
	}
	if cfg.repeat < 1 || cfg.repeat > 5 || cfg.n < 1 || cfg.n > 1_000_000 || cfg.inflight < 1 || cfg.inflight > 10_000 || cfg.batch < 1 || cfg.batch > 100_000 {
		fatal(errors.New("-n, -inflight, -batch or -repeat out of range"))
	}
	if err := checkLoopback(cfg.redisAddr); err != nil {
		fatal(err)
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	err := run(ctx, cfg)
	cancel()
	if cfg.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bullmq-bench:", err)
	os.Exit(1)
}

// checkLoopback refuses any Redis that is not on this machine.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("redis address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("redis address %q is not a loopback address: refusing to load it", addr)
	}
	return nil
}

// seedOptions are the orchestrator's job options.
func seedOptions() *bullmq.JobOptions {
	return &bullmq.JobOptions{
		Attempts:         3,
		Backoff:          &bullmq.Backoff{Type: "exponential", Delay: 2 * time.Second},
		RemoveOnComplete: bullmq.KeepFor(time.Hour, 1000),
	}
}

var seedNodeOptions = map[string]any{
	"attempts":         3,
	"backoff":          map[string]any{"type": "exponential", "delay": 2000},
	"removeOnComplete": map[string]any{"age": 3600, "count": 1000},
}

type bench struct {
	cfg    config
	rdb    *redis.Client
	prefix string
	seq    int
}

func run(ctx context.Context, cfg config) error {
	rdb := redis.NewClient(&redis.Options{Addr: cfg.redisAddr, PoolSize: cfg.inflight + 10})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: %w", cfg.redisAddr, err)
	}
	if !cfg.skipNode {
		if _, err := os.Stat(filepath.Join(cfg.nodeDir, "node_modules", "bullmq6")); err != nil {
			return fmt.Errorf("official package not installed: run npm ci in %s (or -skip-node): %w", cfg.nodeDir, err)
		}
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	bn := &bench{cfg: cfg, rdb: rdb, prefix: "bench-" + hex.EncodeToString(b)}
	defer bn.cleanup()

	if cfg.phases["add"] {
		if err := bn.add(ctx); err != nil {
			return err
		}
	}
	if cfg.phases["addbulk"] {
		bulk, err := bn.bestSeconds(func() (float64, error) { return bn.goAddBulk(ctx, bn.nextQueue()) })
		if err != nil {
			return err
		}
		emit(map[string]any{"bench": "addbulk", "impl": "go", "n": cfg.n, "batch": cfg.batch, "seconds": bulk, "jobs_per_s": rate(cfg.n, bulk)})
	}
	if cfg.phases["process"] {
		return bn.process(ctx)
	}
	return nil
}

// add measures (a): one-by-one adds with cfg.inflight in flight.
func (b *bench) add(ctx context.Context) error {
	cfg := b.cfg
	goAdd, err := b.bestSeconds(func() (float64, error) { return b.goAdd(ctx) })
	if err != nil {
		return err
	}
	emit(map[string]any{"bench": "add", "impl": "go", "n": cfg.n, "inflight": cfg.inflight, "seconds": goAdd, "add_per_s": rate(cfg.n, goAdd)})
	if cfg.skipNode {
		return nil
	}
	for _, v := range cfg.nodeVersions {
		r, err := b.best(func() (result, error) {
			return b.node(ctx, v, map[string]any{"mode": "add", "n": cfg.n, "inflight": cfg.inflight, "opts": seedNodeOptions})
		})
		if err != nil {
			return err
		}
		emit(map[string]any{"bench": "add", "impl": "node", "version": nodeVersion(v), "n": cfg.n, "inflight": cfg.inflight, "seconds": r.Seconds, "add_per_s": rate(cfg.n, r.Seconds)})
		emit(map[string]any{"bench": "add", "ratio": "go/node", "version": nodeVersion(v), "value": round2(r.Seconds / goAdd)})
	}
	return nil
}

// process measures (c): no-op jobs through a worker subprocess per implementation.
func (b *bench) process(ctx context.Context) error {
	cfg := b.cfg
	bn := b
	if err := b.floor(ctx); err != nil {
		return err
	}
	// (c) process. The implementations take turns, one run each per round,
	// and each keeps its fastest run: a slow spell of the machine then hits
	// all of them alike instead of one implementation's runs.
	for _, c := range cfg.concurrency {
		impls := []func() (result, error){func() (result, error) { return bn.goProcess(ctx, c) }}
		if !cfg.skipNode {
			for _, v := range cfg.nodeVersions {
				impls = append(impls, func() (result, error) {
					q := bn.nextQueue()
					if _, err := bn.goAddBulk(ctx, q); err != nil {
						return result{}, err
					}
					return bn.measureRedis(ctx, func() (result, error) {
						return bn.nodeOn(ctx, q, v, map[string]any{"mode": "process", "n": cfg.n, "concurrency": c})
					})
				})
			}
		}
		best := make([]result, len(impls))
		for round := 0; round < cfg.repeat; round++ {
			for i, f := range impls {
				r, err := f()
				if err != nil {
					return err
				}
				best[i] = keepBest(best[i], r, round == 0)
			}
		}
		goRes := best[0]
		emit(map[string]any{"bench": "process", "impl": "go", "concurrency": c, "n": cfg.n, "seconds": goRes.Seconds,
			"process_per_s": rate(cfg.n, goRes.Seconds), "vmrss_mb": mb(goRes.VmRSSkB), "vmhwm_mb": mb(goRes.VmHWMkB),
			"cpu_us_per_job":          round2(goRes.CPUms * 1000 / float64(cfg.n)),
			"redis_script_us_per_job": round2(goRes.redisScriptUs / float64(cfg.n)),
			"redis_cpu_us_per_job":    round2(goRes.redisCPUUs / float64(cfg.n)),
			"memory":                  "worker subprocess /proc/self/status: VmRSS at the end, VmHWM peak"})
		for i, r := range best[1:] {
			v := cfg.nodeVersions[i]
			emit(map[string]any{"bench": "process", "impl": "node", "version": nodeVersion(v), "concurrency": c, "n": cfg.n,
				"seconds": r.Seconds, "process_per_s": rate(cfg.n, r.Seconds), "rss_mb": mb(r.RSS / 1024),
				"cpu_us_per_job":          round2(r.CPUms * 1000 / float64(cfg.n)),
				"redis_script_us_per_job": round2(r.redisScriptUs / float64(cfg.n)),
				"redis_cpu_us_per_job":    round2(r.redisCPUUs / float64(cfg.n))})
			emit(map[string]any{"bench": "process", "ratio": "go/node", "version": nodeVersion(v), "concurrency": c, "value": round2(r.Seconds / goRes.Seconds)})
		}
	}
	return nil
}

func nodeVersion(v string) string {
	if v == "5" {
		return "bullmq@5.81.5"
	}
	return "bullmq@6.7.0"
}

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func rate(n int, seconds float64) float64 { return round2(float64(n) / seconds) }
func round2(f float64) float64            { return float64(int64(f*100+0.5)) / 100 }
func mb(kB int64) float64                 { return round2(float64(kB) / 1024) }

func (b *bench) nextQueue() string {
	b.seq++
	return fmt.Sprintf("q%d", b.seq)
}

// cleanup deletes every key the run made.
func (b *bench) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	iter := b.rdb.Scan(ctx, 0, b.prefix+":*", 5000).Iterator()
	var ks []string
	for iter.Next(ctx) {
		ks = append(ks, iter.Val())
		if len(ks) >= 5000 {
			b.rdb.Unlink(ctx, ks...)
			ks = ks[:0]
		}
	}
	if len(ks) > 0 {
		b.rdb.Unlink(ctx, ks...)
	}
}

// best runs f cfg.repeat times and returns the fastest result, with the
// highest memory figures seen.
func (b *bench) best(f func() (result, error)) (result, error) {
	var out result
	for i := 0; i < b.cfg.repeat; i++ {
		r, err := f()
		if err != nil {
			return result{}, err
		}
		out = keepBest(out, r, i == 0)
	}
	return out, nil
}

// keepBest folds run r into the best so far (first: r is the first run):
// the fastest run's time, CPU and Redis figures, the highest memory seen.
func keepBest(out, r result, first bool) result {
	if first || r.Seconds < out.Seconds {
		out.Seconds, out.CPUms = r.Seconds, r.CPUms
		out.redisScriptUs, out.redisCPUUs = r.redisScriptUs, r.redisCPUUs
	}
	out.RSS = max(out.RSS, r.RSS)
	out.VmRSSkB = max(out.VmRSSkB, r.VmRSSkB)
	out.VmHWMkB = max(out.VmHWMkB, r.VmHWMkB)
	return out
}

func (b *bench) bestSeconds(f func() (float64, error)) (float64, error) {
	r, err := b.best(func() (result, error) {
		s, err := f()
		return result{Seconds: s}, err
	})
	return r.Seconds, err
}

// goAdd adds N jobs with cfg.inflight goroutines and returns the seconds.
func (b *bench) goAdd(ctx context.Context) (float64, error) {
	q, err := bullmq.NewQueue(b.rdb, b.nextQueue(), &bullmq.QueueOptions{Prefix: b.prefix})
	if err != nil {
		return 0, fmt.Errorf("new queue: %w", err)
	}
	defer q.Close()
	opts := seedOptions()
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < b.cfg.inflight; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := next.Add(1) - 1
				if k >= int64(b.cfg.n) || ctx.Err() != nil {
					return
				}
				if _, err := q.Add(ctx, "bench", map[string]any{"i": k}, opts); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, fmt.Errorf("go add: %w", firstErr)
	}
	return time.Since(start).Seconds(), nil
}

// goAddBulk adds N jobs to queue with AddBulk batches and returns the seconds.
func (b *bench) goAddBulk(ctx context.Context, queue string) (float64, error) {
	q, err := bullmq.NewQueue(b.rdb, queue, &bullmq.QueueOptions{Prefix: b.prefix})
	if err != nil {
		return 0, fmt.Errorf("new queue: %w", err)
	}
	defer q.Close()
	opts := seedOptions()
	start := time.Now()
	for i := 0; i < b.cfg.n; i += b.cfg.batch {
		end := min(i+b.cfg.batch, b.cfg.n)
		jobs := make([]bullmq.BulkJob, 0, end-i)
		for k := i; k < end; k++ {
			jobs = append(jobs, bullmq.BulkJob{Name: "bench", Data: map[string]any{"i": k}, Opts: opts})
		}
		if _, err := q.AddBulk(ctx, jobs); err != nil {
			return 0, fmt.Errorf("add bulk: %w", err)
		}
	}
	return time.Since(start).Seconds(), nil
}

// result is what a measuring subprocess prints.
type result struct {
	Seconds float64 `json:"seconds"`
	RSS     int64   `json:"rss_bytes"`
	VmRSSkB int64   `json:"vmrss_kb"`
	VmHWMkB int64   `json:"vmhwm_kb"`
	CPUms   float64 `json:"cpu_ms"` // user+system CPU of the measuring process

	// Set by the bench around a process measurement, not by the child: the
	// Redis server's time in scripts (EVALSHA/EVAL, INFO commandstats) and
	// its CPU time (INFO cpu) while the worker ran, in microseconds.
	redisScriptUs, redisCPUUs float64
}

func (b *bench) node(ctx context.Context, version string, extra map[string]any) (result, error) {
	return b.nodeOn(ctx, b.nextQueue(), version, extra)
}

// nodeOn runs the Node driver's bench.js on queue and returns its result line.
func (b *bench) nodeOn(ctx context.Context, queue, version string, extra map[string]any) (result, error) {
	cfg := map[string]any{"redis": "redis://" + b.cfg.redisAddr, "queue": queue, "prefix": b.prefix, "version": version, "timeoutMs": 300000}
	for k, v := range extra {
		cfg[k] = v
	}
	js, _ := json.Marshal(cfg)
	cmd := exec.CommandContext(ctx, "node", "bench.js", string(js))
	cmd.Dir = b.cfg.nodeDir
	cmd.Stderr = os.Stderr
	return runChild(cmd, "node bench")
}

// goProcess fills a queue and runs this program as a worker subprocess on it.
func (b *bench) goProcess(ctx context.Context, concurrency int) (result, error) {
	q := b.nextQueue()
	if _, err := b.goAddBulk(ctx, q); err != nil {
		return result{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return result{}, fmt.Errorf("find own binary: %w", err)
	}
	cc := childConfig{Redis: b.cfg.redisAddr, Queue: q, Prefix: b.prefix, N: b.cfg.n, Concurrency: concurrency}
	if b.cfg.cpuProfile != "" {
		cc.CPUProfile = fmt.Sprintf("%s.worker-c%d", b.cfg.cpuProfile, concurrency)
	}
	js, _ := json.Marshal(cc)
	cmd := exec.CommandContext(ctx, self, "-worker-child", string(js))
	cmd.Stderr = os.Stderr
	return b.measureRedis(ctx, func() (result, error) { return runChild(cmd, "go worker") })
}

func runChild(cmd *exec.Cmd, what string) (result, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	if err := cmd.Start(); err != nil {
		return result{}, fmt.Errorf("start %s: %w", what, err)
	}
	var last []byte
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		last = append(last[:0], sc.Bytes()...)
	}
	if err := cmd.Wait(); err != nil {
		return result{}, fmt.Errorf("%s: %w (last output %s)", what, err, last)
	}
	var r result
	if err := json.Unmarshal(last, &r); err != nil || r.Seconds <= 0 {
		return result{}, fmt.Errorf("%s printed %q: %v", what, last, err)
	}
	return r, nil
}

// childConfig configures the worker subprocess.
type childConfig struct {
	Redis       string `json:"redis"`
	Queue       string `json:"queue"`
	Prefix      string `json:"prefix"`
	N           int    `json:"n"`
	Concurrency int    `json:"concurrency"`
	CPUProfile  string `json:"cpuProfile,omitempty"`
}

// workerChild runs a no-op Worker until N jobs completed, then prints the
// elapsed seconds and its memory figures.
func workerChild(arg string) error {
	var cfg childConfig
	if err := json.Unmarshal([]byte(arg), &cfg); err != nil {
		return fmt.Errorf("parse config: %w", err)
	}
	if err := checkLoopback(cfg.Redis); err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Redis, PoolSize: cfg.Concurrency + 10})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var done atomic.Int64
	finished := make(chan struct{})
	w, err := bullmq.NewWorker(rdb, cfg.Queue, func(context.Context, *bullmq.Job) (any, error) { return "ok", nil }, &bullmq.WorkerOptions{
		Prefix:      cfg.Prefix,
		Concurrency: cfg.Concurrency,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		OnCompleted: func(*bullmq.Job, json.RawMessage) {
			if done.Add(1) == int64(cfg.N) {
				close(finished)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("new worker: %w", err)
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- w.Run(runCtx) }()
	select {
	case <-finished:
	case err := <-errc:
		return fmt.Errorf("worker stopped after %d jobs: %v", done.Load(), err)
	case <-ctx.Done():
		return fmt.Errorf("timed out after %d jobs", done.Load())
	}
	seconds := time.Since(start).Seconds()
	rss, hwm := procStatus()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
	stop()
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelClose()
	_ = w.Close(closeCtx)
	b, _ := json.Marshal(result{Seconds: seconds, VmRSSkB: rss, VmHWMkB: hwm, CPUms: cpu})
	fmt.Println(string(b))
	return nil
}

// procStatus reads VmRSS and VmHWM (kB) of this process.
func procStatus() (rss, hwm int64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	for _, l := range strings.Split(string(b), "\n") {
		fields := strings.Fields(l)
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	return rss, hwm
}

// measureRedis runs f and adds to its result the Redis server's script time
// and CPU time meanwhile. The figures are server-wide: they are the
// measured worker's only while nothing else uses this Redis.
func (b *bench) measureRedis(ctx context.Context, f func() (result, error)) (result, error) {
	script0, cpu0, err := b.redisCost(ctx)
	if err != nil {
		return result{}, err
	}
	r, err := f()
	if err != nil {
		return r, err
	}
	script1, cpu1, err := b.redisCost(ctx)
	if err != nil {
		return result{}, err
	}
	r.redisScriptUs, r.redisCPUUs = script1-script0, cpu1-cpu0
	return r, nil
}

// redisCost reads the server's total microseconds in EVALSHA and EVAL
// (INFO commandstats) and its CPU time (INFO cpu, user + sys) in µs.
func (b *bench) redisCost(ctx context.Context) (scriptUs, cpuUs float64, err error) {
	info, err := b.rdb.Info(ctx, "commandstats", "cpu").Result()
	if err != nil {
		return 0, 0, fmt.Errorf("redis INFO: %w", err)
	}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch name {
		case "cmdstat_evalsha", "cmdstat_eval":
			for _, kv := range strings.Split(rest, ",") {
				if k, v, _ := strings.Cut(kv, "="); k == "usec" {
					n, _ := strconv.ParseFloat(v, 64)
					scriptUs += n
				}
			}
		case "used_cpu_user", "used_cpu_sys":
			n, _ := strconv.ParseFloat(rest, 64)
			cpuUs += n * 1e6
		}
	}
	return scriptUs, cpuUs, nil
}

// floor prints the shortest a job can take at concurrency 1 on this
// machine, whatever the client: the round trip of a script call that does
// nothing (EVALSHA "return 1", one at a time, 3000 times). Each job at
// concurrency 1 costs at least one such round trip plus its own script.
func (b *bench) floor(ctx context.Context) error {
	sha, err := b.rdb.ScriptLoad(ctx, "return 1").Result()
	if err != nil {
		return fmt.Errorf("load floor script: %w", err)
	}
	const n = 3000
	start := time.Now()
	for range n {
		if err := b.rdb.EvalSha(ctx, sha, nil).Err(); err != nil {
			return fmt.Errorf("floor script: %w", err)
		}
	}
	emit(map[string]any{"bench": "floor", "what": "EVALSHA 'return 1' round trip at concurrency 1 (go-redis)",
		"rtt_us": round2(float64(time.Since(start).Microseconds()) / n)})
	return nil
}
