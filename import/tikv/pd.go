package tikv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/pingcap/kvproto/pkg/metapb"
	pd "github.com/tikv/pd/client"
	"github.com/tikv/pd/client/opt"
)

// pdInitRetries caps the PD client's start-up retries (its default is 100,
// one a second) so that a refused connection fails in seconds; a PD that
// does not answer at all is cut off by the context deadline instead.
const pdInitRetries = 3

// tikvStores lists the stores that take import mode. Tombstones are gone
// for good; Offline stores are being decommissioned, may well be down, and
// are skipped as TiDB Lightning does so that a dying store cannot fail the
// import; TiFlash has no import service.
func tikvStores(ctx context.Context, cfg Config) ([]Store, error) {
	if len(cfg.PDAddrs) == 0 {
		return nil, errors.New("tikv: import mode needs PD addresses")
	}
	where := strings.Join(cfg.PDAddrs, ",")
	// The client's background loops live on this context: the deadline
	// bounds its start-up, and Close below ends them.
	cctx, cancel := context.WithTimeout(ctx, cfg.timeout())
	defer cancel()
	cli, err := newPDClient(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("tikv: connect to PD %s: %w", where, err)
	}
	defer cli.Close()
	all, err := cli.GetAllStores(cctx, opt.WithExcludeTombstone())
	if err != nil {
		return nil, fmt.Errorf("tikv: list stores from PD %s: %w", where, err)
	}
	var out []Store
	for _, st := range all {
		if takesImportMode(st) {
			out = append(out, Store{ID: st.GetId(), Address: st.GetAddress()})
		}
	}
	slices.SortFunc(out, func(a, b Store) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out, nil
}

// newPDClient is client-go's PD client (tikv.NewPDClient) made the way
// client-go's own constructors that take a config.Security make it, with a
// context and a retry bound: tikv.NewPDClient itself reads client-go's
// process-wide config and retries a dead PD for a hundred seconds.
func newPDClient(ctx context.Context, cfg Config) (pd.Client, error) {
	sec, err := cfg.security()
	if err != nil {
		return nil, err
	}
	return pd.NewClientWithContext(ctx, cfg.PDAddrs,
		pd.SecurityOption{CAPath: sec.ClusterSSLCA, CertPath: sec.ClusterSSLCert, KeyPath: sec.ClusterSSLKey},
		opt.WithCustomTimeoutOption(cfg.timeout()), opt.WithMaxErrorRetry(pdInitRetries),
		// storm serves its own metrics; the PD client's would only pile up
		// in the default registry.
		opt.WithInitMetricsOption(false))
}

func takesImportMode(st *metapb.Store) bool {
	// Filtered here too: ExcludeTombstoneStores is only a request.
	if st.GetState() != metapb.StoreState_Up || st.GetPhysicallyDestroyed() {
		return false
	}
	switch st.GetNodeState() {
	case metapb.NodeState_Removing, metapb.NodeState_Removed:
		return false
	}
	for _, l := range st.GetLabels() {
		// "tiflash" and "tiflash_compute"; TiKV has no engine label or "tikv".
		if l.GetKey() == "engine" && l.GetValue() != "" && l.GetValue() != "tikv" {
			return false
		}
	}
	return true
}

// httpBases are the base URLs of PD's HTTP API, tried in order.
func (c Config) httpBases() []string {
	addrs := c.PDAddrs
	if c.PDHTTPAddr != "" {
		addrs = []string{c.PDHTTPAddr}
	}
	out := make([]string, 0, len(addrs))
	scheme := "http://"
	if c.TLS.IsSet() {
		scheme = "https://"
	}
	for _, a := range addrs {
		a = strings.TrimRight(strings.TrimSpace(a), "/")
		if a == "" {
			continue
		}
		if !strings.Contains(a, "://") {
			a = scheme + a
		}
		out = append(out, a)
	}
	return out
}

func (c Config) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	if c.TLS.IsSet() {
		return &http.Client{Transport: HTTPTransport(c.TLS)}
	}
	return http.DefaultClient
}

// httpStatusError is PD's answer to a request it refused.
type httpStatusError struct {
	Status int
	Body   string
}

func (e *httpStatusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body)
}

// pdHTTP sends one request to PD's HTTP API. Only a PD that cannot be
// reached is skipped for the next address: one that answered has decided.
func pdHTTP(ctx context.Context, cfg Config, method, path string, in, out any) error {
	bases := cfg.httpBases()
	if len(bases) == 0 {
		return errors.New("tikv: no PD address")
	}
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("tikv: %s %s: %w", method, path, err)
		}
	}
	var errs []error
	for _, base := range bases {
		err := pdHTTPOnce(ctx, cfg, method, base+path, body, out)
		if err == nil {
			return nil
		}
		err = fmt.Errorf("PD %s: %s %s: %w", base, method, path, err)
		var se *httpStatusError
		if errors.As(err, &se) || ctx.Err() != nil {
			return err
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func pdHTTPOnce(ctx context.Context, cfg Config, method, u string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout())
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := cfg.httpClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &httpStatusError{Status: resp.StatusCode, Body: strings.TrimSpace(string(data))}
	}
	if out == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	// Config values go back to PD verbatim: keep uint64s exact.
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

const schedulersPath = "/pd/api/v1/schedulers"

// runningBalanceSchedulers lists the balance schedulers that exist and are
// not paused: one paused by someone else (BR, an operator) is theirs to
// resume, not ours.
func runningBalanceSchedulers(ctx context.Context, cfg Config) ([]string, error) {
	var all, paused []string
	if err := pdHTTP(ctx, cfg, http.MethodGet, schedulersPath, nil, &all); err != nil {
		return nil, fmt.Errorf("tikv: list schedulers: %w", err)
	}
	if err := pdHTTP(ctx, cfg, http.MethodGet, schedulersPath+"?status=paused", nil, &paused); err != nil {
		return nil, fmt.Errorf("tikv: list paused schedulers: %w", err)
	}
	var out []string
	for _, name := range all {
		if balanceSchedulers[name] && !slices.Contains(paused, name) && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// pauseScheduler pauses name for seconds; 0 resumes it.
func pauseScheduler(ctx context.Context, cfg Config, name string, seconds int) error {
	verb := "pause"
	if seconds == 0 {
		verb = "resume"
	}
	err := pdHTTP(ctx, cfg, http.MethodPost, schedulersPath+"/"+url.PathEscape(name),
		map[string]int{"delay": seconds}, nil)
	if err != nil {
		return fmt.Errorf("%s scheduler %s: %w", verb, name, err)
	}
	return nil
}

// isSchedulerNotFound tells a scheduler that no longer exists, which PD
// reports as a 500 with ErrSchedulerNotFound's text in some versions.
func isSchedulerNotFound(err error) bool {
	var se *httpStatusError
	if !errors.As(err, &se) {
		return false
	}
	return se.Status == http.StatusNotFound || strings.Contains(se.Body, "scheduler not found")
}

const scheduleConfigPath = "/pd/api/v1/config/schedule"

func scheduleConfig(ctx context.Context, cfg Config) (map[string]any, error) {
	var m map[string]any
	if err := pdHTTP(ctx, cfg, http.MethodGet, scheduleConfigPath, nil, &m); err != nil {
		return nil, fmt.Errorf("tikv: read schedule config: %w", err)
	}
	return m, nil
}

// setScheduleConfig posts only the given keys: PD merges them into its
// current schedule config.
func setScheduleConfig(ctx context.Context, cfg Config, values map[string]any) error {
	if err := pdHTTP(ctx, cfg, http.MethodPost, scheduleConfigPath, values, nil); err != nil {
		keys := make([]string, 0, len(values))
		for k := range values {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return fmt.Errorf("set schedule config %s: %w", strings.Join(keys, ","), err)
	}
	return nil
}
