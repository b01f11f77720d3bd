// Command gen writes the fake upstream's bundled synthetic data set,
// pkg/upstream/fake/testdata/characters.json.
//
// Every name, place and date in it is invented. The output is deterministic (a
// fixed seed and a home-made generator whose sequence no Go release can change),
// so re-running it rewrites the same bytes, and TestCommittedFileIsCurrent fails
// when the committed file drifts from this program. From pkg/upstream/fake:
//
//	go generate
//
// which runs `go run ./internal/gen -o testdata/characters.json`.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/rickmorty/rickmorty/pkg/upstream"
)

func main() {
	out := flag.String("o", "", "write to this file instead of stdout")
	flag.Parse()

	chars := generate()
	data, err := encode(chars)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	if *out == "" {
		_, err = os.Stdout.Write(data)
	} else {
		err = os.WriteFile(*out, data, 0o644) //nolint:gosec // G306: a source file of the repository, readable like the others
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "gen: %d characters, %d pass the exact filter\n", len(chars), countPassing(chars))
}

// encode writes one character per line inside a JSON array, so the file reads
// (and diffs) like a table. HTML escaping is off because the upstream, a
// JavaScript service, does not escape <, > and &.
func encode(chars []upstream.Character) ([]byte, error) {
	var out, line bytes.Buffer
	enc := json.NewEncoder(&line)
	enc.SetEscapeHTML(false)
	out.WriteString("[\n")
	for i, c := range chars {
		line.Reset()
		if err := enc.Encode(c); err != nil {
			return nil, err
		}
		out.WriteString("  ")
		out.Write(bytes.TrimSuffix(line.Bytes(), []byte("\n")))
		if i < len(chars)-1 {
			out.WriteByte(',')
		}
		out.WriteByte('\n')
	}
	out.WriteString("]\n")
	return out.Bytes(), nil
}

// countPassing counts the characters an ingester keeps: exactly Human, exactly
// Alive, and an origin starting with "Earth (".
func countPassing(chars []upstream.Character) int {
	n := 0
	for _, c := range chars {
		if c.Species == "Human" && c.Status == "Alive" && strings.HasPrefix(c.Origin.Name, "Earth (") {
			n++
		}
	}
	return n
}
