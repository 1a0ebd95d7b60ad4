// Package storage is where a dump's files live: a local (or mounted)
// directory, or an S3 bucket and prefix ("s3://bucket/prefix"). It lists the
// files under a root with their sizes, and opens one as a seekable stream
// that is also an io.ReaderAt, so that the readers of import/source work the
// same on both.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Entry is one file (or, for a flat listing, one subdirectory) under a root.
type Entry struct {
	Path    string // the root joined with Rel: what Open takes
	Rel     string // relative to the root, "/"-separated
	Size    int64
	ETag    string // S3 only: the object's ETag, quotes included
	Regular bool   // a file (or a symlink to one); false for directories
}

// Version pins the content of a file: Open with a Version refuses a file
// whose size or ETag is no longer that. A zero field is not checked.
type Version struct {
	Size int64  `json:"size,omitempty"`
	ETag string `json:"etag,omitempty"`
}

// Object is an open file. Read streams it from the offset Seek set (0 at
// first); ReadAt reads any range without moving that offset, and may be
// called from several goroutines at once (for readers that jump around a
// file, such as Parquet's: on S3, one ranged GET per call).
type Object interface {
	io.ReadSeekCloser
	io.ReaderAt
	Size() int64
}

// ErrChanged is wrapped by the error of Open when the file is no longer
// the version planned, and of Read/ReadAt when it changes while read.
var ErrChanged = errors.New("changed since the plan")

// ErrUnavailable is wrapped by errors that retrying later may fix: the
// storage stayed unreachable past the retry budget.
var ErrUnavailable = errors.New("storage unavailable")

// IsRemote reports whether path names an object in S3 rather than a local
// file.
func IsRemote(path string) bool { return strings.HasPrefix(path, s3Scheme) }

// Join appends rel ("/"-separated) to root.
func Join(root, rel string) string {
	if IsRemote(root) {
		return strings.TrimSuffix(root, "/") + "/" + rel
	}
	return filepath.Join(root, filepath.FromSlash(rel))
}

// Base is the last element of path.
func Base(path string) string {
	if IsRemote(path) {
		return path[strings.LastIndexByte(path, '/')+1:]
	}
	return filepath.Base(path)
}

// List lists the files directly under root; with tree, those under its
// subdirectories too (in place of the subdirectories themselves).
func List(ctx context.Context, root string, tree bool) ([]Entry, error) {
	if IsRemote(root) {
		c, loc, err := s3For(root)
		if err != nil {
			return nil, err
		}
		return c.list(ctx, loc, tree)
	}
	return listLocal(root, tree)
}

// Open opens path for reading. A non-zero want is checked against the file
// (and, for S3, every read is conditional on the ETag).
func Open(ctx context.Context, path string, want Version) (Object, error) {
	if IsRemote(path) {
		c, loc, err := s3For(path)
		if err != nil {
			return nil, err
		}
		return c.open(ctx, loc, path, want)
	}
	return openLocal(path, want)
}

// Stat returns the size and ETag (S3) of path.
func Stat(ctx context.Context, path string) (Version, error) {
	if IsRemote(path) {
		c, loc, err := s3For(path)
		if err != nil {
			return Version{}, err
		}
		return c.stat(ctx, loc, path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return Version{}, err
	}
	return Version{Size: st.Size()}, nil
}

func checkVersion(path string, got, want Version) error {
	if want.ETag != "" && got.ETag != want.ETag {
		return fmt.Errorf("%s: %w: ETag %s, planned %s", path, ErrChanged, got.ETag, want.ETag)
	}
	if want.Size != 0 && got.Size != want.Size {
		return fmt.Errorf("%s: %w: %d bytes, planned %d", path, ErrChanged, got.Size, want.Size)
	}
	return nil
}
