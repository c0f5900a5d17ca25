// oci-validate BUNDLE: the OCI runtime-tools bundle validator (Debian's
// golang-github-opencontainers-runtime-tools-dev) and the runtime-spec JSON schema (from
// golang-github-opencontainers-specs-dev, read from disk: no network) on BUNDLE/config.json.
// One line per problem; exit 0 when there is none, 1 when there is one, 2 when the bundle
// cannot be read. Run by tests/integration/19-oci-validate.sh.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/hashicorp/go-multierror"
	"github.com/opencontainers/runtime-tools/validate"
	"github.com/xeipuuv/gojsonschema"
)

const schemaDir = "/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema"

// errorsOf flattens what a check returns: the validator's checks return an empty
// *multierror.Error, not nil, when all is well.
func errorsOf(err error) []error {
	if err == nil {
		return nil
	}
	if me, ok := err.(*multierror.Error); ok {
		return me.Errors
	}
	return []error{err}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: oci-validate BUNDLE")
		os.Exit(2)
	}
	bundle, err := filepath.Abs(os.Args[1])
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	v, err := validate.NewValidatorFromPath(bundle, true, "linux")
	if err != nil {
		fmt.Println("read the bundle:", err)
		os.Exit(2)
	}
	var problems []string
	schema := gojsonschema.NewReferenceLoader("file://" + schemaDir + "/config-schema.json")
	doc := gojsonschema.NewReferenceLoader("file://" + filepath.Join(bundle, "config.json"))
	res, err := gojsonschema.Validate(schema, doc)
	if err != nil {
		problems = append(problems, "schema: "+err.Error())
	} else {
		for _, e := range res.Errors() {
			problems = append(problems, "schema: "+e.String())
		}
	}
	// CheckSemVer is left out: this validator accepts only the one spec version it was built
	// against (1.0.2-dev); the schema checks that ociVersion is a version.
	checks := map[string]func() error{
		"platform": v.CheckPlatform, "root": v.CheckRoot, "mandatory fields": v.CheckMandatoryFields,
		"mounts": v.CheckMounts, "process": v.CheckProcess, "linux": v.CheckLinux,
		"annotations": v.CheckAnnotations, "hooks": v.CheckHooks,
	}
	for name, check := range checks {
		for _, e := range errorsOf(check()) {
			problems = append(problems, name+": "+e.Error())
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
	fmt.Println("valid")
}
