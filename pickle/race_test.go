//go:build race

package pickle

func init() { raceEnabled = true }
