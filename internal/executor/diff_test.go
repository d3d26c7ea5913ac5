package executor

import (
	"fmt"
	"strings"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	tests := []struct {
		name          string
		oldN, newN    string
		before, after string
		want          string
	}{
		{name: "equal", oldN: "f", newN: "f", before: "a\n", after: "a\n", want: ""},
		{name: "change in middle", oldN: "f", newN: "f",
			before: "1\n2\n3\n4\n5\n6\n7\n8\n9\n",
			after:  "1\n2\n3\n4\nfive\n6\n7\n8\n9\n",
			want:   "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"},
		{name: "two hunks", oldN: "f", newN: "f",
			before: "a\n1\n2\n3\n4\n5\n6\n7\n8\nb\n",
			after:  "A\n1\n2\n3\n4\n5\n6\n7\n8\nB\n",
			want:   "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,4 +1,4 @@\n-a\n+A\n 1\n 2\n 3\n@@ -7,4 +7,4 @@\n 6\n 7\n 8\n-b\n+B\n"},
		{name: "no newline at end", oldN: "f", newN: "f", before: "x\ny", after: "x\ny\n",
			want: "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n x\n-y\n\\ No newline at end of file\n+y\n"},
		{name: "deleted file", oldN: "f", newN: "", before: "a\nb\n", after: "",
			want: "diff --git a/f b/f\ndeleted file mode 100644\n--- a/f\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n"},
		{name: "binary", oldN: "f", newN: "f", before: "a\x00", after: "b\x00",
			want: "diff --git a/f b/f\nBinary files a/f and b/f differ\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := unifiedDiff(tt.oldN, tt.newN, []byte(tt.before), []byte(tt.after))
			if got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestDiffLinesRoundTrip checks that applying the edit script to a gives b,
// and that it is minimal for simple cases.
func TestDiffLinesRoundTrip(t *testing.T) {
	var a, b []string
	for i := range 300 {
		a = append(a, fmt.Sprintf("line %d\n", i))
		switch {
		case i%17 == 0:
			b = append(b, fmt.Sprintf("changed %d\n", i))
		case i%23 == 0:
		default:
			b = append(b, fmt.Sprintf("line %d\n", i))
		}
		if i%31 == 0 {
			b = append(b, "inserted\n")
		}
	}
	edits := diffLines(a, b)
	var gotA, gotB []string
	for _, e := range edits {
		if e.op != opInsert {
			gotA = append(gotA, e.line)
		}
		if e.op != opDelete {
			gotB = append(gotB, e.line)
		}
	}
	if strings.Join(gotA, "") != strings.Join(a, "") || strings.Join(gotB, "") != strings.Join(b, "") {
		t.Fatal("edit script does not turn a into b")
	}
	if got := len(diffLines([]string{"x\n", "y\n", "z\n"}, []string{"x\n", "z\n"})); got != 3 {
		t.Errorf("deleting one line gave %d edits, want 3", got)
	}
}
