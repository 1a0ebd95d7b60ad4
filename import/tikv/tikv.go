// Package tikv puts a TiKV cluster into the state a bulk import wants and
// takes it back out: every TiKV store in import mode (TiKV stops throttling
// ingestion behind compaction), PD's balance schedulers paused with a TTL and
// region merge switched off (so regions split for the import are not merged
// back or moved mid-ingest), as TiDB Lightning does.
//
// What Prepare changed is returned as a Saved, which is plain JSON so that it
// can be stored in etcd and any node can Keep or Restore it: the node that
// prepared may be gone by the time the import ends.
package tikv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/pingcap/kvproto/pkg/import_sstpb"

	"storm/internal/tlsfiles"
)

const (
	// DefaultPauseTTL is how long a scheduler pause lasts unless renewed, so
	// that a crashed importer leaves PD scheduling again on its own.
	DefaultPauseTTL = 5 * time.Minute
	// DefaultTimeout bounds each PD or TiKV request, and the PD client's
	// start-up, which otherwise retries for a long time against a dead PD.
	DefaultTimeout = 5 * time.Second
	// tikvImportModeTimeout is TiKV's default import.import-mode-timeout:
	// a store leaves import mode by itself if nobody re-asserts it this often.
	tikvImportModeTimeout = 10 * time.Minute
)

// Config says where the cluster is and what to change.
type Config struct {
	// PDAddrs are PD client addresses, "host:port" or "http(s)://host:port".
	PDAddrs []string
	// PDHTTPAddr overrides where PD's HTTP API is reached; empty means the
	// PDAddrs, tried in order (any member answers: followers forward to the
	// leader).
	PDHTTPAddr string
	// ImportMode switches every TiKV store to import mode.
	ImportMode bool
	// PauseSchedulers pauses PD's balance schedulers and turns region merge
	// off.
	PauseSchedulers bool
	// PauseTTL is the scheduler pause's lifetime; 0 means DefaultPauseTTL.
	PauseTTL time.Duration
	// Timeout bounds each request; 0 means DefaultTimeout.
	Timeout time.Duration
	// HTTPClient talks to PD's HTTP API; nil means a default client (with
	// TLS, HTTPS with TLS's files: HTTPTransport).
	HTTPClient *http.Client
	// TLS (tidb.tls) is used towards PD (its client and, as https://, its
	// HTTP API) and the TiKV stores; unset, all of it is plain.
	TLS tlsfiles.Files
}

// Store is a TiKV store switched to import mode.
type Store struct {
	ID      uint64 `json:"id"`
	Address string `json:"address"`
}

// Saved is what Prepare changed, with what it found before, so that Restore
// can put it back from any node.
type Saved struct {
	// Stores are the TiKV stores Prepare switched, or tried to switch, to
	// import mode.
	Stores []Store `json:"stores,omitempty"`
	// Schedulers are the balance schedulers that were running and that
	// Prepare paused.
	Schedulers []string `json:"schedulers,omitempty"`
	// Config holds PD schedule config values as found before Prepare changed
	// them, keyed by PD's JSON name.
	Config map[string]any `json:"config,omitempty"`
	At     time.Time      `json:"at"`
}

// UnmarshalJSON keeps Config's numbers as json.Number: PD's schedule config
// has uint64 values, which a float64 could round, and Restore must write back
// exactly what it found.
func (s *Saved) UnmarshalJSON(data []byte) error {
	type plain Saved
	var p plain
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return err
	}
	*s = Saved(p)
	return nil
}

// balanceSchedulers are the schedulers Prepare pauses: they move regions and
// leaders around, which competes with ingestion and invalidates the region
// layout the importer split for.
var balanceSchedulers = map[string]bool{
	"balance-leader-scheduler":     true,
	"balance-region-scheduler":     true,
	"balance-hot-region-scheduler": true,
}

// mergeOff is the schedule config Prepare sets: with merge on, PD merges the
// empty regions the importer pre-split back together before they are filled.
var mergeOff = map[string]any{
	"max-merge-region-keys": 0,
	"max-merge-region-size": 0,
}

func (c Config) pauseTTL() time.Duration {
	if c.PauseTTL <= 0 {
		return DefaultPauseTTL
	}
	return c.PauseTTL
}

func (c Config) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

// pauseSeconds rounds up: PD takes whole seconds, and a pause shorter than
// asked could lapse between two Keeps.
func (c Config) pauseSeconds() int {
	return int((c.pauseTTL() + time.Second - 1) / time.Second)
}

// KeepInterval is how often Keep must run so that neither the scheduler pause
// nor TiKV's import mode lapses, with room for two missed rounds.
func (c Config) KeepInterval() time.Duration {
	return min(c.pauseTTL(), tikvImportModeTimeout) / 3
}

// Prepare puts the cluster into import state as cfg asks: Plan, then Apply.
// On error the returned Saved still describes everything that may have been
// changed: pass it to Restore. A caller that must survive its own crash
// halfway calls Plan, saves the result, and only then calls Apply.
func Prepare(ctx context.Context, cfg Config) (Saved, error) {
	s, err := Plan(ctx, cfg)
	if err != nil {
		return s, err
	}
	return s, Apply(ctx, cfg, s)
}

// Plan reads what Prepare would change, and the values found before, without
// changing anything: the stores to switch to import mode, the balance
// schedulers running now, and the current values of the schedule config keys
// Apply sets. An unreachable PD fails here, without side effects.
func Plan(ctx context.Context, cfg Config) (Saved, error) {
	s := Saved{At: time.Now().UTC()}
	// On error nothing was changed: the Saved returned says so.
	none := Saved{At: s.At}
	if len(cfg.PDAddrs) == 0 && cfg.PDHTTPAddr == "" {
		return none, errors.New("tikv: no PD address")
	}
	if cfg.PauseSchedulers {
		running, err := runningBalanceSchedulers(ctx, cfg)
		if err != nil {
			return none, err
		}
		current, err := scheduleConfig(ctx, cfg)
		if err != nil {
			return none, err
		}
		s.Schedulers = running
		for k := range mergeOff {
			// A key this PD version lacks would make the whole POST fail.
			if old, ok := current[k]; ok {
				if s.Config == nil {
					s.Config = map[string]any{}
				}
				s.Config[k] = old
			}
		}
	}
	if cfg.ImportMode {
		stores, err := tikvStores(ctx, cfg)
		if err != nil {
			return none, err
		}
		s.Stores = stores
	}
	return s, nil
}

// Apply makes the changes a Plan describes: its stores to import mode, its
// schedulers paused for the pause TTL, its config keys set to the values
// that keep PD from merging regions. Each step can be repeated. A store that
// can't be switched stops it before PD's scheduling is touched: the job will
// fail, and there is less to put back.
func Apply(ctx context.Context, cfg Config, s Saved) error {
	if err := switchAll(ctx, cfg, s.Stores, import_sstpb.SwitchMode_Import); err != nil {
		return fmt.Errorf("tikv: %w", err)
	}
	var errs []error
	for _, name := range s.Schedulers {
		if err := pauseScheduler(ctx, cfg, name, cfg.pauseSeconds()); err != nil {
			errs = append(errs, fmt.Errorf("tikv: pause scheduling: %w", err))
		}
	}
	change := map[string]any{}
	for k := range s.Config {
		if v, ok := mergeOff[k]; ok {
			change[k] = v
		}
	}
	if len(change) > 0 {
		if err := setScheduleConfig(ctx, cfg, change); err != nil {
			errs = append(errs, fmt.Errorf("tikv: pause scheduling: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Keep re-asserts what Prepare did that expires by itself: import mode on the
// saved stores and the pause of the saved schedulers, each for another TTL.
// Run it every cfg.KeepInterval().
func Keep(ctx context.Context, cfg Config, s Saved) error {
	var errs []error
	if err := switchAll(ctx, cfg, s.Stores, import_sstpb.SwitchMode_Import); err != nil {
		errs = append(errs, err)
	}
	for _, name := range s.Schedulers {
		err := pauseScheduler(ctx, cfg, name, cfg.pauseSeconds())
		// A scheduler someone removed meanwhile needs no pause.
		if err != nil && !isSchedulerNotFound(err) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tikv: keep import state: %w", err)
	}
	return nil
}

// Restore undoes Prepare as saved: stores back to normal mode, schedulers
// resumed, schedule config put back. Every step is tried whatever the others
// do, and each can be repeated, so Restore can be run again after a partial
// failure or by another node.
func Restore(ctx context.Context, cfg Config, s Saved) error {
	var errs []error
	if err := switchAll(ctx, cfg, s.Stores, import_sstpb.SwitchMode_Normal); err != nil {
		errs = append(errs, err)
	}
	for _, name := range s.Schedulers {
		err := pauseScheduler(ctx, cfg, name, 0)
		// A scheduler someone removed meanwhile is not paused by us any more.
		if err != nil && !isSchedulerNotFound(err) {
			errs = append(errs, err)
		}
	}
	if len(s.Config) > 0 {
		if err := setScheduleConfig(ctx, cfg, s.Config); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tikv: restore: %w", err)
	}
	return nil
}
