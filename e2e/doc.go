// Package e2e holds black-box tests that drive a running rickmorty system
// from outside, configured only by environment variables. It deliberately
// does not import the project's internal packages: everything it knows about
// the system comes over HTTP (the API, the ingester's /metrics, the fake
// upstream's /_fake/ controls) and from the shell commands it is given.
//
// `make e2e` (scripts/e2e.sh) starts a complete local system and runs the
// suite against it; README.md in this directory lists the variables for
// running it against any other deployment.
package e2e
