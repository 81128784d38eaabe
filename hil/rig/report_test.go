package rig

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"testing"
)

// The report's JSON has the fields `hil run --json` promises, and its JUnit
// file parses back with the counts and the failure.
func TestReportFormats(t *testing.T) {
	rep := Report{Rack: "virtual", Passed: 1, Failed: 1, Skipped: 1, Tests: []Result{
		{Name: "a", OK: true, Seconds: 1.5},
		{Name: "b", Seconds: 2, Error: "boom"},
		{Name: "c", Skipped: true, Error: "needs 3 boards"},
	}}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Passed, Failed, Skipped *int
		Tests                   []struct {
			Name    *string  `json:"name"`
			OK      *bool    `json:"ok"`
			Seconds *float64 `json:"seconds"`
		} `json:"tests"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Passed == nil || *m.Passed != 1 || m.Failed == nil || *m.Failed != 1 || m.Skipped == nil || len(m.Tests) != 3 {
		t.Fatalf("json %s", b)
	}
	for _, x := range m.Tests {
		if x.Name == nil || x.OK == nil || x.Seconds == nil {
			t.Fatalf("a test lacks name, ok or seconds: %s", b)
		}
	}
	var buf bytes.Buffer
	if err := rep.JUnit(&buf); err != nil {
		t.Fatal(err)
	}
	var ju struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Skipped  int    `xml:"skipped,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &ju); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	s := ju.Suites[0]
	if s.Tests != 3 || s.Failures != 1 || s.Skipped != 1 || s.Cases[1].Failure == nil || s.Cases[1].Failure.Message != "boom" || s.Cases[2].Skipped == nil {
		t.Fatalf("junit %s", buf.String())
	}
}
