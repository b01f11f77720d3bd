// Package e2e holds black-box tests that drive a running rickmorty system
// from outside, configured only by environment variables. It deliberately
// does not import the project's internal packages.
package e2e
