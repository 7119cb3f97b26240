package engine

import "time"

// step starts timing one step of a phase; calling the returned func logs how
// long it took at Debug level (BENCH_LOG=debug in the copy benchmark):
//
//	defer e.step("estimate", "ns", ns.String())()
func (e *Engine) step(name string, args ...any) func() {
	began := time.Now()
	return func() {
		e.logger.Debug("step", append([]any{"step", name, "took", time.Since(began).Round(time.Microsecond)}, args...)...)
	}
}
