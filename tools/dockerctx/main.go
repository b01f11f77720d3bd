// Command dockerctx copies the files that Docker would send as the build
// context of a directory, given its .dockerignore, into another directory,
// and reports how many files and bytes that is. scripts/chart/check-dockerfiles.sh
// builds the images' binaries from that copy, so a .dockerignore that leaves
// out something the build needs fails there, without a Docker engine.
//
// Usage:
//
//	go run ./tools/dockerctx -context . -out /tmp/ctx
package main

import (
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

func main() {
	ctxDir := flag.String("context", ".", "build context directory (holding .dockerignore)")
	out := flag.String("out", "", "directory to copy the context into (must not exist or be empty)")
	flag.Parse()
	if *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	files, size, err := run(*ctxDir, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dockerctx:", err)
		os.Exit(1)
	}
	fmt.Printf("dockerctx: build context is %d files, %d KiB\n", files, (size+1023)/1024)
}

func run(ctxDir, out string) (files int, size int64, err error) {
	var patterns []string
	if f, err := os.Open(filepath.Join(ctxDir, ".dockerignore")); err == nil {
		patterns, err = ignorefile.ReadAll(f)
		_ = f.Close() // opened read-only: nothing to flush
		if err != nil {
			return 0, 0, fmt.Errorf("read .dockerignore: %w", err)
		}
	} else if !os.IsNotExist(err) {
		return 0, 0, err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return 0, 0, fmt.Errorf("parse .dockerignore: %w", err)
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return 0, 0, err
	}
	err = filepath.WalkDir(ctxDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(ctxDir, path)
		if err != nil || rel == "." {
			return err
		}
		if abs, _ := filepath.Abs(path); abs == absOut {
			return filepath.SkipDir
		}
		if d.IsDir() {
			// Descend unless the directory is excluded with no exception
			// that could bring part of it back.
			excluded, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
			if err != nil {
				return err
			}
			if excluded && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		excluded, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		if excluded || !d.Type().IsRegular() {
			return nil
		}
		n, err := copyFile(path, filepath.Join(out, rel))
		files++
		size += n
		return err
	})
	return files, size, err
}

func copyFile(src, dst string) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, err
	}
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close() //nolint:errcheck // opened read-only: nothing to flush
	o, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(o, in)
	if cerr := o.Close(); err == nil {
		err = cerr
	}
	return n, err
}
