//go:build !race

package interop

// raceEnabled is true when the suite runs with -race.
const raceEnabled = false
