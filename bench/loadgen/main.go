// Command loadgen drives padlock's CA HTTP API (`POST /v1/sign`, the JSON contract of
// operator/padlock/ca/client.py) as hard as N concurrent clients can, and prints one JSON
// object with what it measured.
//
// Who runs it and why: bench/bench_ca_http.py builds it (bench/loadgen/driver.py) and runs
// it against `padlock ca serve`. The Python client (aiohttp) costs 0.6-1.5 ms of CPU per
// request on the same 2 cores as the CA, as much as the CA's whole budget per certificate at
// 2,000/s; this program costs about 0.1 ms, so the figures are the CA's.
//
// Each client owns one keep-alive connection and sends one request at a time: a fresh
// idempotency key every time, and the next CSR of a file of pre-generated PEM CSRs, cycled.
// A request counts when its answer arrives within the measured window, which follows the
// warm-up (as wrk counts): in a steady state that is neither biased by the requests in flight
// when the window opens nor by the drain after it closes. A response counts as a success only
// if it is HTTP 200 with non-empty string fields certificate, chain and serial; anything else
// is an error, counted by "<status> <error code>" with one sample message each. Latencies are
// of successes. CPU is this process's own user+system time (getrusage) over the window.
//
// On stderr it writes "loadgen: measuring" when the window opens and "loadgen: measured" when
// it closes, so a caller can read other processes' CPU over the same window; the requests
// still in flight then are awaited, not counted, and the JSON result follows on stdout.
//
//	loadgen -socket ca.sock -csrs csrs.pem -clients 16 -duration 5s -warmup 1s
//	loadgen -url http://127.0.0.1:8080 -csrs csrs.pem
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type options struct {
	socket, url, csrFile, profile, requester, keyPrefix string
	clients                                             int
	lifetime                                            int
	duration, warmup, timeout                           time.Duration
}

// signResponse holds both shapes of a /v1/sign answer: success and error.
type signResponse struct {
	Certificate string `json:"certificate"`
	Chain       string `json:"chain"`
	Serial      string `json:"serial"`
	Error       string `json:"error"`
	Message     string `json:"message"`
}

type errorCount struct {
	Count  int    `json:"count"`
	Sample string `json:"sample"`
}

// tally is one client's record of the answers that arrived within the measured window.
type tally struct {
	requests  int
	latencies []time.Duration
	errors    map[string]*errorCount
}

func (t *tally) fail(key, message string) {
	e := t.errors[key]
	if e == nil {
		e = &errorCount{Sample: message}
		t.errors[key] = e
	}
	e.Count++
}

func main() {
	var o options
	flag.StringVar(&o.socket, "socket", "", "unix socket of `padlock ca serve`")
	flag.StringVar(&o.url, "url", "", "base URL instead of a socket, e.g. http://127.0.0.1:8080")
	flag.StringVar(&o.csrFile, "csrs", "", "file of PEM CSRs (CERTIFICATE REQUEST blocks)")
	flag.IntVar(&o.clients, "clients", 1, "concurrent clients, one connection each")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured window")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before the window, not counted")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "timeout of one request")
	flag.StringVar(&o.profile, "profile", "tls-server", "certificate profile")
	flag.IntVar(&o.lifetime, "lifetime", 86400, "lifetime_seconds asked for")
	flag.StringVar(&o.requester, "requester", "bench/loadgen", "requester field")
	flag.StringVar(&o.keyPrefix, "key-prefix", "", "idempotency key prefix (default: random)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
}

func run(o options) error {
	if (o.socket == "") == (o.url == "") {
		return fmt.Errorf("give exactly one of -socket and -url")
	}
	if o.clients < 1 || o.duration <= 0 || o.warmup < 0 {
		return fmt.Errorf("-clients must be >= 1, -duration > 0 and -warmup >= 0")
	}
	csrs, err := loadCSRs(o.csrFile)
	if err != nil {
		return err
	}
	if o.keyPrefix == "" {
		random := make([]byte, 8)
		_, _ = rand.Read(random)
		o.keyPrefix = "loadgen/" + hex.EncodeToString(random)
	}

	start := time.Now()
	measureFrom := start.Add(o.warmup)
	stopAt := measureFrom.Add(o.duration)
	tallies := make([]*tally, o.clients)
	var wg sync.WaitGroup
	for c := range o.clients {
		k, err := newConn(o)
		if err != nil {
			return err
		}
		tallies[c] = &tally{errors: map[string]*errorCount{}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			client(o, c, k, csrs, measureFrom, stopAt, tallies[c])
		}()
	}
	time.Sleep(time.Until(measureFrom))
	cpuBefore := cpuSeconds()
	fmt.Fprintln(os.Stderr, "loadgen: measuring")
	time.Sleep(time.Until(stopAt))
	cpu := cpuSeconds() - cpuBefore
	fmt.Fprintln(os.Stderr, "loadgen: measured")
	wg.Wait()
	return json.NewEncoder(os.Stdout).Encode(summarize(o, tallies, o.duration, cpu))
}

// loadCSRs returns each CSR of the file as a JSON string literal, encoded once up front.
func loadCSRs(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read -csrs: %w", err)
	}
	var out [][]byte
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE REQUEST" {
			literal, _ := json.Marshal(string(pem.EncodeToMemory(block)))
			out = append(out, literal)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no CERTIFICATE REQUEST PEM block in %s", path)
	}
	return out, nil
}

// conn is one client's keep-alive HTTP/1.1 connection. It writes a request and reads the
// answer in the client's own goroutine: net/http's Transport hands every request to two more
// goroutines, which cost more CPU per request than the rest of this program.
type conn struct {
	network, address, head string
	timeout                time.Duration
	c                      net.Conn
	r                      *bufio.Reader
	buf                    []byte
}

func newConn(o options) (*conn, error) {
	k := &conn{network: "unix", address: o.socket, timeout: o.timeout}
	host, path := "padlock-ca", "/v1/sign"
	if o.url != "" {
		u, err := url.Parse(o.url)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("-url must be http://host:port, got %q", o.url)
		}
		k.network, k.address, host = "tcp", u.Host, u.Host
		path = strings.TrimRight(u.Path, "/") + path
	}
	k.head = "POST " + path + " HTTP/1.1\r\nHost: " + host +
		"\r\nContent-Type: application/json\r\nContent-Length: "
	return k, nil
}

// post sends one request and returns the answer's status and body. After an error, or when
// the server closes, the connection is dropped and the next request dials again.
func (k *conn) post(body []byte) (int, []byte, error) {
	if k.c == nil {
		c, err := net.DialTimeout(k.network, k.address, k.timeout)
		if err != nil {
			return 0, nil, err
		}
		k.c, k.r = c, bufio.NewReaderSize(c, 16<<10)
	}
	status, raw, keep, err := k.exchange(body)
	if err != nil || !keep {
		k.c.Close()
		k.c = nil
	}
	return status, raw, err
}

// exchange writes the request and reads the answer: status, body, and whether the
// connection may be kept (RFC 9112 §9.6: not after "Connection: close").
func (k *conn) exchange(body []byte) (int, []byte, bool, error) {
	if err := k.c.SetDeadline(time.Now().Add(k.timeout)); err != nil {
		return 0, nil, false, err
	}
	k.buf = append(k.buf[:0], k.head...)
	k.buf = strconv.AppendInt(k.buf, int64(len(body)), 10)
	k.buf = append(append(k.buf, "\r\n\r\n"...), body...)
	if _, err := k.c.Write(k.buf); err != nil {
		return 0, nil, false, err
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		return 0, nil, false, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, raw, !resp.Close, err
}

func client(o options, id int, k *conn, csrs [][]byte, measureFrom, stopAt time.Time,
	t *tally) {
	keyPrefix := o.keyPrefix + "/" + strconv.Itoa(id) + "/"
	profile, _ := json.Marshal(o.profile)
	requester, _ := json.Marshal(o.requester)
	// Every field but the CSR and the key is the same in every request: encode it once.
	rest := fmt.Appendf(nil, `,"profile":%s,"lifetime_seconds":%d,"requester":%s,"idempotency_key":`,
		profile, o.lifetime, requester)
	var body bytes.Buffer
	for i := 0; ; i++ {
		started := time.Now()
		if !started.Before(stopAt) {
			return
		}
		key, _ := json.Marshal(keyPrefix + strconv.Itoa(i))
		body.Reset()
		body.WriteString(`{"csr":`)
		body.Write(csrs[(id+i*o.clients)%len(csrs)])
		body.Write(rest)
		body.Write(key)
		body.WriteString("}")
		failure, message := signOnce(k, body.Bytes())
		done := time.Now()
		if done.Before(measureFrom) || !done.Before(stopAt) {
			continue // answered during the warm-up or after the window
		}
		t.requests++
		if failure == "" {
			t.latencies = append(t.latencies, done.Sub(started))
		} else {
			t.fail(failure, message)
		}
	}
}

// signOnce sends one request; it returns ("", "") for a success, else an error key and a
// sample message.
func signOnce(k *conn, body []byte) (string, string) {
	status, raw, err := k.post(body)
	if err != nil {
		return "transport", err.Error()
	}
	var answer signResponse
	if json.Unmarshal(raw, &answer) != nil {
		return fmt.Sprintf("%d non-json", status), truncate(string(raw))
	}
	if status == http.StatusOK {
		if answer.Certificate != "" && answer.Chain != "" && answer.Serial != "" {
			return "", ""
		}
		return "200 incomplete", "answer lacks certificate, chain or serial: " + truncate(string(raw))
	}
	code := answer.Error
	if code == "" {
		code = "no-code"
	}
	return fmt.Sprintf("%d %s", status, code), truncate(answer.Message)
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

type summary struct {
	Clients      int                    `json:"clients"`
	Seconds      float64                `json:"seconds"`
	Requests     int                    `json:"requests"`
	Successes    int                    `json:"successes"`
	Errors       map[string]*errorCount `json:"errors"`
	CertsPerS    float64                `json:"certs_per_s"`
	LatencyMs    map[string]float64     `json:"latency_ms"`
	CPUSeconds   float64                `json:"cpu_seconds"`
	CPUMsPerCert float64                `json:"cpu_ms_per_cert"`
}

func summarize(o options, tallies []*tally, elapsed time.Duration, cpu float64) summary {
	s := summary{Clients: o.clients, Seconds: elapsed.Seconds(), Errors: map[string]*errorCount{},
		CPUSeconds: cpu, LatencyMs: map[string]float64{}}
	var all []time.Duration
	for _, t := range tallies {
		s.Requests += t.requests
		all = append(all, t.latencies...)
		for key, e := range t.errors {
			if s.Errors[key] == nil {
				s.Errors[key] = &errorCount{Sample: e.Sample}
			}
			s.Errors[key].Count += e.Count
		}
	}
	s.Successes = len(all)
	s.CertsPerS = float64(s.Successes) / s.Seconds
	if s.Successes > 0 {
		s.CPUMsPerCert = cpu * 1000 / float64(s.Successes)
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		for name, q := range map[string]float64{"p50": 0.50, "p90": 0.90, "p99": 0.99, "max": 1} {
			s.LatencyMs[name] = float64(all[rank(q, len(all))].Microseconds()) / 1000
		}
	}
	return s
}

// rank is the nearest-rank index of quantile q among n sorted values.
func rank(q float64, n int) int {
	return max(0, min(n-1, int(math.Ceil(q*float64(n)))-1))
}
