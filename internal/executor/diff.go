package executor

import (
	"bytes"
	"fmt"
	"strings"
)

// This file writes unified diffs without git: a Myers O(ND) line diff
// (E. Myers, "An O(ND) Difference Algorithm and Its Variations", 1986) and
// the usual hunk layout with three lines of context.

const (
	diffContext = 3
	// maxDiffEdits bounds the edit distance the Myers search explores; past
	// it, the file is shown as fully replaced, which is a valid if larger
	// diff, so that a rewritten huge file cannot take quadratic memory.
	maxDiffEdits = 4000
)

type editOp byte

const (
	opEqual  editOp = ' '
	opDelete editOp = '-'
	opInsert editOp = '+'
)

type edit struct {
	op   editOp
	line string
}

// splitLines splits s into lines that keep their "\n"; the last line lacks
// it when s does not end with one.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// diffLines returns an edit script turning a into b.
func diffLines(a, b []string) []edit {
	n, m := len(a), len(b)
	maxD := n + m
	if maxD > maxDiffEdits {
		maxD = maxDiffEdits
	}
	// v[k+off] is the furthest x reached on diagonal k; trace[d] keeps the
	// part of v (diagonals -d..d) as it was before step d.
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	var trace [][]int
	found := -1
	for d := 0; d <= maxD && found < 0; d++ {
		trace = append(trace, append([]int(nil), v[off-d:off+d+1]...))
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[off+k] = x
			if x >= n && y >= m {
				found = d
				break
			}
		}
	}
	if found < 0 {
		return replaceAll(a, b)
	}
	// Walk back from (n, m), collecting edits in reverse.
	var rev []edit
	x, y := n, m
	for d := found; d > 0; d-- {
		t := trace[d]
		at := func(k int) int { return t[k+d] }
		k := x - y
		var prevK int
		if k == -d || (k != d && at(k-1) < at(k+1)) {
			prevK = k + 1
		} else {
			prevK = k - 1
		}
		prevX := at(prevK)
		prevY := prevX - prevK
		for x > prevX && y > prevY {
			rev = append(rev, edit{opEqual, a[x-1]})
			x, y = x-1, y-1
		}
		if x == prevX {
			rev = append(rev, edit{opInsert, b[y-1]})
			y--
		} else {
			rev = append(rev, edit{opDelete, a[x-1]})
			x--
		}
	}
	for x > 0 && y > 0 {
		rev = append(rev, edit{opEqual, a[x-1]})
		x, y = x-1, y-1
	}
	edits := make([]edit, len(rev))
	for i, e := range rev {
		edits[len(rev)-1-i] = e
	}
	return edits
}

func replaceAll(a, b []string) []edit {
	edits := make([]edit, 0, len(a)+len(b))
	for _, l := range a {
		edits = append(edits, edit{opDelete, l})
	}
	for _, l := range b {
		edits = append(edits, edit{opInsert, l})
	}
	return edits
}

// unifiedDiff returns the unified diff of one file going from before to
// after, or "" when they are equal. An empty name on one side
// (oldName or newName) marks a created or deleted file.
func unifiedDiff(oldName, newName string, before, after []byte) string {
	if bytes.Equal(before, after) {
		return ""
	}
	var b strings.Builder
	shown := newName
	if shown == "" {
		shown = oldName
	}
	fmt.Fprintf(&b, "diff --git a/%s b/%s\n", shown, shown)
	from, to := "a/"+oldName, "b/"+newName
	if oldName == "" {
		b.WriteString("new file mode 100644\n")
		from = "/dev/null"
	}
	if newName == "" {
		b.WriteString("deleted file mode 100644\n")
		to = "/dev/null"
	}
	if isBinary(before) || isBinary(after) {
		fmt.Fprintf(&b, "Binary files %s and %s differ\n", from, to)
		return b.String()
	}
	fmt.Fprintf(&b, "--- %s\n+++ %s\n", from, to)
	writeHunks(&b, diffLines(splitLines(string(before)), splitLines(string(after))))
	return b.String()
}

func isBinary(p []byte) bool {
	return bytes.IndexByte(p, 0) >= 0
}

// writeHunks writes the edits as hunks with diffContext lines of context.
func writeHunks(b *strings.Builder, edits []edit) {
	// Positions (0-based) in a and b where each edit starts.
	type pos struct{ a, b int }
	starts := make([]pos, len(edits)+1)
	for i, e := range edits {
		p := starts[i]
		switch e.op {
		case opEqual:
			p.a, p.b = p.a+1, p.b+1
		case opDelete:
			p.a++
		case opInsert:
			p.b++
		}
		starts[i+1] = p
	}
	i := 0
	for i < len(edits) {
		// Find the next change.
		for i < len(edits) && edits[i].op == opEqual {
			i++
		}
		if i == len(edits) {
			return
		}
		first := max(0, i-diffContext)
		// Extend the hunk while changes are at most 2*context apart.
		last := i
		for j := i; j < len(edits); j++ {
			if edits[j].op != opEqual {
				last = j
				continue
			}
			if j-last > 2*diffContext {
				break
			}
		}
		end := min(len(edits), last+1+diffContext)
		aStart, bStart := starts[first].a, starts[first].b
		aLen, bLen := starts[end].a-aStart, starts[end].b-bStart
		fmt.Fprintf(b, "@@ -%s +%s @@\n", hunkRange(aStart, aLen), hunkRange(bStart, bLen))
		for _, e := range edits[first:end] {
			b.WriteByte(byte(e.op))
			b.WriteString(e.line)
			if !strings.HasSuffix(e.line, "\n") {
				b.WriteString("\n\\ No newline at end of file\n")
			}
		}
		i = end
	}
}

// hunkRange formats a hunk's line range: 1-based start, and the length
// unless it is 1; an empty range names the line before it.
func hunkRange(start, length int) string {
	switch length {
	case 0:
		return fmt.Sprintf("%d,0", start)
	case 1:
		return fmt.Sprintf("%d", start+1)
	default:
		return fmt.Sprintf("%d,%d", start+1, length)
	}
}
