// Command taskload is a small, bounded load generator for POST /tasks. It
// only targets loopback addresses (127.0.0.0/8, ::1, localhost), runs a
// fixed number of requests or for a fixed time (whichever is given, both
// capped), and prints one JSON object: throughput, latency percentiles and
// error counts.
//
//	taskload -url http://127.0.0.1:3000 -c 50 -duration 10s
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Caps that keep a run bounded whatever the flags say.
const (
	maxRequests    = 5_000_000
	maxDuration    = 10 * time.Minute
	maxConcurrency = 1000
)

// result is what taskload prints.
type result struct {
	URL         string         `json:"url"`
	Concurrency int            `json:"concurrency"`
	Requests    int64          `json:"requests"`
	Errors      int64          `json:"errors"`
	Seconds     float64        `json:"seconds"`
	ReqPerSec   float64        `json:"reqPerSec"`
	LatencyMs   latency        `json:"latencyMs"`
	Status      map[string]int `json:"status"`
	FirstError  string         `json:"firstError,omitempty"`
}

type latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "taskload:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("taskload", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:3000", "base URL of the orchestrator (loopback only)")
	conc := fs.Int("c", 50, "concurrent clients")
	n := fs.Int64("n", 0, "total requests (0: use -duration)")
	dur := fs.Duration("duration", 10*time.Second, "run time when -n is 0")
	warmup := fs.Duration("warmup", time.Second, "requests sent before measuring, not counted")
	codeBytes := fs.Int("code-bytes", 256, "size of the code field")
	key := fs.String("key", "", "API key sent as a bearer token")
	if err := fs.Parse(args); err != nil {
		return err
	}
	target, err := loopbackURL(*base)
	if err != nil {
		return err
	}
	switch {
	case *conc < 1 || *conc > maxConcurrency:
		return fmt.Errorf("-c must be 1..%d", maxConcurrency)
	case *n < 0 || *n > maxRequests:
		return fmt.Errorf("-n must be 0..%d", maxRequests)
	case *n == 0 && (*dur <= 0 || *dur > maxDuration):
		return fmt.Errorf("-duration must be in (0, %s]", maxDuration)
	case *warmup < 0 || *warmup > time.Minute:
		return errors.New("-warmup must be 0..1m")
	case *codeBytes < 1 || *codeBytes > 1<<20:
		return errors.New("-code-bytes must be 1..1048576")
	}
	body, _ := json.Marshal(map[string]any{"code": strings.Repeat("x", *codeBytes), "prompt": "Explain this code."})

	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        *conc,
			MaxIdleConnsPerHost: *conc,
			MaxConnsPerHost:     *conc,
			DisableCompression:  true,
		},
	}
	l := &loader{client: client, url: target + "/tasks", body: body, key: *key}
	if *warmup > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), *warmup)
		l.run(ctx, *conc, 0)
		cancel()
	}
	limit := *n
	d := maxDuration
	if limit == 0 {
		d = *dur
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	st := l.run(ctx, *conc, limit)
	elapsed := time.Since(start)

	res := result{URL: target, Concurrency: *conc, Requests: int64(len(st.lat)), Errors: st.errors,
		Seconds: round(elapsed.Seconds()), Status: st.status, FirstError: st.firstErr}
	if elapsed > 0 {
		res.ReqPerSec = round(float64(len(st.lat)) / elapsed.Seconds())
	}
	res.LatencyMs = summarize(st.lat)
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// loopbackURL accepts only http(s) URLs whose host is a loopback address
// or "localhost", and returns it without a trailing slash.
func loopbackURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("-url must be http:// or https://")
	}
	host := u.Hostname()
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return "", fmt.Errorf("-url host %q is not a loopback address: taskload only loads this machine", host)
		}
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

type loader struct {
	client *http.Client
	url    string
	body   []byte
	key    string
}

type stats struct {
	lat      []time.Duration
	errors   int64
	status   map[string]int
	firstErr string
}

// run sends requests from conc goroutines until ctx ends or, when limit
// > 0, limit requests were sent.
func (l *loader) run(ctx context.Context, conc int, limit int64) stats {
	var (
		sent atomic.Int64
		mu   sync.Mutex
		wg   sync.WaitGroup
		all  = stats{status: map[string]int{}}
	)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := stats{status: map[string]int{}}
			for ctx.Err() == nil {
				if limit > 0 && sent.Add(1) > limit {
					break
				}
				t0 := time.Now()
				status, err := l.post(ctx)
				d := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil {
						break // cut by the deadline: not counted
					}
					local.errors++
					local.status["error"]++
					if local.firstErr == "" {
						local.firstErr = err.Error()
					}
					continue
				}
				local.lat = append(local.lat, d)
				local.status[strconv.Itoa(status)]++
				if status != http.StatusCreated {
					local.errors++
				}
			}
			mu.Lock()
			all.lat = append(all.lat, local.lat...)
			all.errors += local.errors
			for k, v := range local.status {
				all.status[k] += v
			}
			if all.firstErr == "" {
				all.firstErr = local.firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all
}

func (l *loader) post(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(l.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if l.key != "" {
		req.Header.Set("Authorization", "Bearer "+l.key)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func summarize(lat []time.Duration) latency {
	if len(lat) == 0 {
		return latency{}
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	pct := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(lat)))) - 1
		i = max(0, min(i, len(lat)-1))
		return ms(lat[i])
	}
	return latency{Mean: ms(sum / time.Duration(len(lat))), P50: pct(0.50), P90: pct(0.90), P99: pct(0.99), Max: ms(lat[len(lat)-1])}
}

func ms(d time.Duration) float64 { return round(float64(d) / float64(time.Millisecond)) }

func round(f float64) float64 { return math.Round(f*100) / 100 }
