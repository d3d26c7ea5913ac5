//go:build race

package interop

// raceEnabled is true when the suite runs with -race: goworker is then built
// with -race too, so the Go worker is race-checked in every scenario.
const raceEnabled = true
