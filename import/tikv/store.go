package tikv

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/pingcap/kvproto/pkg/import_sstpb"
	"google.golang.org/grpc"
)

// switchParallel bounds the stores switched at once: a large cluster should
// not get hundreds of simultaneous dials from one node.
const switchParallel = 16

// switchAll sets mode on every store, trying all of them whatever happens to
// the others, and names each store that failed.
func switchAll(ctx context.Context, cfg Config, stores []Store, mode import_sstpb.SwitchMode) error {
	errs := make([]error, len(stores))
	sem := make(chan struct{}, switchParallel)
	var wg sync.WaitGroup
	for i, st := range stores {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := switchMode(ctx, cfg, st.Address, mode); err != nil {
				errs[i] = fmt.Errorf("store %d (%s): %w", st.ID, st.Address, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func switchMode(ctx context.Context, cfg Config, addr string, mode import_sstpb.SwitchMode) error {
	// One connection per call: Keep runs every few minutes, so pooling would
	// only hold sockets open in between.
	creds, err := cfg.grpcCreds() // import/tikv/security.go
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(addr, creds)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout())
	defer cancel()
	_, err = import_sstpb.NewImportSSTClient(conn).SwitchMode(ctx, &import_sstpb.SwitchModeRequest{Mode: mode})
	if err != nil {
		return fmt.Errorf("switch to %s mode: %w", mode, err)
	}
	return nil
}
