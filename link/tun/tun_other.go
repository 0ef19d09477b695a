//go:build !linux

package tun

import "errors"

// Device is unavailable off Linux.
type Device struct{}

// Open fails off Linux.
func Open(name string, mtu int) (*Device, error) {
	return nil, errors.New("tun: only supported on Linux")
}

// OpenConfig fails off Linux.
func OpenConfig(c Config) (*Device, error) {
	return nil, errors.New("tun: only supported on Linux")
}
