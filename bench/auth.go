package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/controlplane"
)

// authRow is the latency of one kind of legitimate request in one phase.
type authRow struct {
	Phase    string  `json:"phase"`
	Request  string  `json:"request"`
	N        int     `json:"n"`
	P50MS    float64 `json:"p50Ms"`
	P99MS    float64 `json:"p99Ms"`
	Attempts int64   `json:"attackAttempts"`
	Checked  int64   `json:"attackChecked401"`
	Refused  int64   `json:"attackRefused429"`
}

// authBench measures legitimate requests to a control plane (real HTTP,
// real SQLite) idle and while wrong passwords are sent as fast as the
// attackers can, with the credential limits on and lifted.
func authBench(args []string) error {
	fs := flag.NewFlagSet("auth", flag.ContinueOnError)
	n := fs.Int("n", 200, "API-key requests per phase")
	logins := fs.Int("logins", 20, "password logins per phase")
	attackers := fs.Int("attackers", 16, "parallel attackers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var rows []authRow
	for _, ph := range []struct {
		name   string
		attack bool
		lifted bool
		spray  bool
		cap    int
	}{{"idle", false, false, false, 0}, {"attack, limits on", true, false, false, 0}, {"attack, limits lifted", true, true, false, 0},
		{"spray, hashing capped", true, false, true, 0}, {"spray, hashing uncapped", true, false, true, -1}} {
		r, err := authPhase(ph.name, ph.attack, ph.lifted, ph.spray, ph.cap, *n, *logins, *attackers)
		if err != nil {
			return fmt.Errorf("%s: %w", ph.name, err)
		}
		rows = append(rows, r...)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\trequest\tn\tp50 ms\tp99 ms\tattack attempts\tchecked (401)\trefused (429)\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%.2f\t%d\t%d\t%d\t\n", r.Phase, r.Request, r.N, r.P50MS, r.P99MS, r.Attempts, r.Checked, r.Refused)
	}
	tw.Flush()
	fmt.Printf("Attackers: %d in parallel, wrong passwords for one user from one address (spray: a new unknown name from a new address\n"+
		"every attempt, which no per-account or per-address limit stops). Legitimate requests come from another address;\n"+
		"logins after the first are recognized by the verified-credential cache; wrong passwords each cost one PBKDF2 (100k iterations).\n"+
		"Hashing capped: at most max(1, GOMAXPROCS/2) = %d PBKDF2 at once (Options.HashConcurrency).\n", *attackers, max(1, runtime.GOMAXPROCS(0)/2))
	return writeBenchJSON("auth", map[string]any{"config": map[string]int{"n": *n, "logins": *logins, "attackers": *attackers}, "results": rows})
}

func authPhase(phase string, attack, lifted, spray bool, hashCap, n, logins, attackers int) ([]authRow, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bench-auth-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var handler http.Handler
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	defer hs.Close()
	opts := controlplane.Options{DataPath: filepath.Join(dir, "cp.db"), Key: bytes.Repeat([]byte{7}, controlplane.KeySize),
		ExternalURL: hs.URL, TrustProxy: true, Logger: slog.New(slog.DiscardHandler), HashConcurrency: hashCap}
	if hashCap == 0 {
		opts.HashConcurrency = max(1, runtime.GOMAXPROCS(0)/2) // the default, again after an uncapped phase
	}
	if lifted {
		opts.AuthLimits = controlplane.AuthLimits{PerAccountAddress: 1 << 30, PerAccount: 1 << 30, PerAddress: 1 << 30}
	}
	srv, err := controlplane.New(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	handler = srv.Handler()
	_, _, orgID, err := srv.Bootstrap(ctx, controlplane.BootstrapOptions{Username: "root", Password: "root-password"})
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	call := func(method, path, addr, user, pass, body string) (int, []byte, error) {
		req, err := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("X-Forwarded-For", addr)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	create := func(path string, body any, v any) error {
		b, _ := json.Marshal(body)
		code, out, err := call("POST", path, "10.0.0.1", "root", "root-password", string(b))
		if err == nil && code != http.StatusCreated {
			err = fmt.Errorf("POST %s: %d %s", path, code, out)
		}
		if err == nil {
			err = json.Unmarshal(out, v)
		}
		return err
	}
	var key api.APIKey
	var user api.User
	if err := create("/api/atlas/v2/orgs/"+orgID+"/apiKeys", api.APIKeyRequest{Desc: "bench", Roles: []api.Role{{RoleName: api.RoleOrgMember}}}, &key); err != nil {
		return nil, err
	}
	for _, name := range []string{"victim", "bob"} {
		if err := create("/api/atlas/v2/orgs/"+orgID+"/users", api.UserRequest{Username: name, Password: name + "-password", Roles: []api.Role{{RoleName: api.RoleOrgMember}}}, &user); err != nil {
			return nil, err
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var attempts, checked, refused atomic.Int64
	if attack {
		var seq atomic.Int64
		for range attackers {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					addr, user := "203.0.113.66", "victim"
					if spray {
						i := seq.Add(1)
						addr, user = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), fmt.Sprintf("sprayed%d", i)
					}
					code, _, err := call("GET", "/api/atlas/v2/orgs/"+orgID, addr, user, "guess", "")
					if err != nil {
						continue
					}
					attempts.Add(1)
					switch code {
					case http.StatusUnauthorized:
						checked.Add(1)
					case http.StatusTooManyRequests:
						refused.Add(1)
					}
				}
			})
		}
		time.Sleep(500 * time.Millisecond)
	}
	measure := func(name string, count int, f func() (int, error), want int) (authRow, error) {
		var d []time.Duration
		for range count {
			start := time.Now()
			code, err := f()
			if err != nil {
				return authRow{}, err
			}
			if code != want {
				return authRow{}, fmt.Errorf("%s: status %d, want %d", name, code, want)
			}
			d = append(d, time.Since(start))
		}
		slices.Sort(d)
		ms := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))].Microseconds()) / 1000 }
		return authRow{Phase: phase, Request: name, N: count, P50MS: ms(0.5), P99MS: ms(0.99)}, nil
	}
	var rows []authRow
	r, err := measure("API key GET (Basic)", n, func() (int, error) {
		code, _, err := call("GET", "/api/atlas/v2/orgs/"+orgID, "198.51.100.7", key.PublicKey, key.PrivateKey, "")
		return code, err
	}, http.StatusOK)
	if err == nil {
		rows = append(rows, r)
		r, err = measure("password login (POST /api/session)", logins, func() (int, error) {
			code, _, err := call("POST", "/api/session", "198.51.100.7", "", "", `{"username":"bob","password":"bob-password"}`)
			return code, err
		}, http.StatusOK)
	}
	if err == nil {
		rows = append(rows, r)
		// Unknown and known names with a wrong password, each from an
		// address of its own (so neither is throttled): the same work.
		i := 0
		for _, name := range []string{"bob", "nobody"} {
			r, err = measure("wrong password, "+map[string]string{"bob": "known", "nobody": "unknown"}[name]+" user", logins, func() (int, error) {
				i++
				code, _, err := call("GET", "/api/atlas/v2/orgs/"+orgID, fmt.Sprintf("192.0.2.%d", i%250+1), name, "guess", "")
				return code, err
			}, http.StatusUnauthorized)
			if err != nil {
				break
			}
			rows = append(rows, r)
		}
	}
	close(stop)
	wg.Wait()
	for i := range rows {
		rows[i].Attempts, rows[i].Checked, rows[i].Refused = attempts.Load(), checked.Load(), refused.Load()
	}
	return rows, err
}
