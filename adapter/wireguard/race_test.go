//go:build race

package wireguard

// raceEnabled shrinks the transfers: the race detector slows every byte tenfold.
const raceEnabled = true
