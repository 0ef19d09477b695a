package main

import (
	"fmt"
	"strconv"
	"strings"
)

// portList is a repeatable TCP port flag (--echo, --discard).
type portList []uint16

func (l *portList) String() string {
	s := make([]string, len(*l))
	for i, p := range *l {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}

func (l *portList) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%q is not a port number", v)
	}
	if n < 1 || n > 65535 {
		return fmt.Errorf("port %d out of range [1, 65535]", n)
	}
	*l = append(*l, uint16(n))
	return nil
}
