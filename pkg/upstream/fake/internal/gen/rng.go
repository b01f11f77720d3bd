package main

// rng is a SplitMix64 generator. It lives here rather than coming from
// math/rand so that the committed data set never changes because a Go release
// changed how a library derives numbers from a seed.
type rng struct{ state uint64 }

func (r *rng) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intN returns a number in [0, n). The modulo bias is irrelevant for test data.
func (r *rng) intN(n int) int { return int(r.next() % uint64(n)) } //nolint:gosec // G115: n > 0 and the result < n

// weighted is one option of a weighted choice.
type weighted[T any] struct {
	weight int
	value  T
}

// pick chooses one option with probability proportional to its weight.
func pick[T any](r *rng, opts []weighted[T]) T {
	total := 0
	for _, o := range opts {
		total += o.weight
	}
	n := r.intN(total)
	for _, o := range opts {
		if n < o.weight {
			return o.value
		}
		n -= o.weight
	}
	panic("unreachable")
}

// oneOf chooses uniformly.
func oneOf[T any](r *rng, vals []T) T { return vals[r.intN(len(vals))] }
