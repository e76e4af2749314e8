package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicksPerSecond is USER_HZ, the unit of utime and stime in
// /proc/PID/stat (what `getconf CLK_TCK` prints). Linux fixes it at 100 for
// user space on every architecture, so it is assumed rather than read,
// which would need cgo or running getconf.
const clockTicksPerSecond = 100

// serverStats is a sample of the server process's resource use.
type serverStats struct {
	cpuTicks  uint64 // utime + stime, in clock ticks
	peakRSSkB uint64 // VmHWM: the resident set's high-water mark
}

// readServerStats samples /proc/PID/stat and /proc/PID/status (Linux).
func readServerStats(pid int) (serverStats, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return serverStats{}, err
	}
	ticks, err := parseCPUTicks(stat)
	if err != nil {
		return serverStats{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return serverStats{}, err
	}
	hwm, err := parseVmHWM(status)
	if err != nil {
		return serverStats{}, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return serverStats{cpuTicks: ticks, peakRSSkB: hwm}, nil
}

// parseCPUTicks returns utime+stime, fields 14 and 15 of proc(5)'s stat.
// The fields are counted after the command name, which is in parentheses
// and may itself hold spaces and parentheses.
func parseCPUTicks(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state), so field k is f[k-3].
	if len(f) < 13 {
		return 0, errors.New("too few fields")
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return utime + stime, nil
}

// parseVmHWM returns the VmHWM line's value in kB. A zombie or kernel
// thread has none.
func parseVmHWM(status []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmHWM %q: want a size in kB", v)
		}
		return strconv.ParseUint(f[0], 10, 64)
	}
	return 0, errors.New("no VmHWM (has the process exited?)")
}
