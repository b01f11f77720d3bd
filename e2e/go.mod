module github.com/rickmorty/rickmorty/e2e

go 1.26.8

require (
	github.com/andybalholm/brotli v1.3.0
	github.com/klauspost/compress v1.20.2
)
