package storage

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

func listLocal(dir string, tree bool) ([]Entry, error) {
	entry := func(path, rel string, d fs.DirEntry) Entry {
		e := Entry{Path: path, Rel: rel}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				e.Regular, e.Size = true, info.Size()
			}
		} else if d.Type()&os.ModeSymlink != 0 {
			// A symlink counts when it leads to a regular file.
			if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
				e.Regular, e.Size = true, st.Size()
			}
		}
		return e
	}
	if !tree {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("read dump directory %s: %w", dir, err)
		}
		out := make([]Entry, 0, len(entries))
		for _, d := range entries {
			out = append(out, entry(filepath.Join(dir, d.Name()), d.Name(), d))
		}
		return out, nil
	}
	var out []Entry
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read dump directory %s: %w", path, err)
		}
		if path == dir || d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		out = append(out, entry(path, filepath.ToSlash(rel), d))
		return nil
	})
	return out, err
}

type localFile struct {
	*os.File
	size int64
}

func (f *localFile) Size() int64 { return f.size }

func openLocal(path string, want Version) (Object, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := checkVersion(path, Version{Size: st.Size()}, want); err != nil {
		f.Close()
		return nil, err
	}
	return &localFile{f, st.Size()}, nil
}
