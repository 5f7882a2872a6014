package web

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// emittedErrorCodes reads the error codes the server can send from its
// source: every newErr(status, "code", …) and apiError{Code: "code"} in this
// package, and every escalation.ErrorKind (input errors carry their kind as
// the code).
func emittedErrorCodes(t *testing.T) map[string]string {
	t.Helper()
	codes := map[string]string{}
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join("..", "escalation", "errors.go"))
	str := func(e ast.Expr) (string, bool) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(lit.Value)
		return s, err == nil
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			if fd, ok := decl.(*ast.FuncDecl); ok && fd.Name.Name == "newErr" {
				continue // the constructor itself passes its parameter on
			}
			ast.Inspect(decl, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "newErr" && len(n.Args) == 3 {
						if c, ok := str(n.Args[1]); ok {
							codes[c] = fset.Position(n.Pos()).String()
						} else {
							t.Errorf("%s: newErr with a code that is not a literal: the test cannot see it", fset.Position(n.Pos()))
						}
					}
				case *ast.CompositeLit:
					if id, ok := n.Type.(*ast.Ident); ok && id.Name == "apiError" {
						for _, el := range n.Elts {
							if kv, ok := el.(*ast.KeyValueExpr); ok && kv.Key.(*ast.Ident).Name == "Code" {
								if c, ok := str(kv.Value); ok {
									codes[c] = fset.Position(n.Pos()).String()
								} else if _, conv := kv.Value.(*ast.CallExpr); !conv {
									t.Errorf("%s: apiError with a code that is not a literal: the test cannot see it", fset.Position(n.Pos()))
								}
							}
						}
					}
				case *ast.ValueSpec:
					if id, ok := n.Type.(*ast.Ident); ok && id.Name == "ErrorKind" {
						for _, v := range n.Values {
							if c, ok := str(v); ok {
								codes[c] = fset.Position(n.Pos()).String()
							}
						}
					}
				}
				return true
			})
		}
	}
	return codes
}

// The document's error-code list is exactly the codes the server can send.
func TestOpenAPIErrorCodesAreTheServers(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openapiYAML)
	if err != nil {
		t.Fatal(err)
	}
	ref := doc.Components.Schemas["ErrorCode"]
	if ref == nil || ref.Value == nil {
		t.Fatal("the document has no ErrorCode schema")
	}
	listed := map[string]bool{}
	for _, v := range ref.Value.Enum {
		listed[v.(string)] = true
	}
	codes := emittedErrorCodes(t)
	for _, must := range []string{"duplicate", "invite_used", "invite_expired", "not_a_stay", "unauthenticated", "invalid_json"} {
		if codes[must] == "" {
			t.Errorf("the source scan did not find %q: the scan is broken", must)
		}
	}
	for c, at := range codes {
		if !listed[c] {
			t.Errorf("%s: the server can send error code %q, which the document's ErrorCode does not list", at, c)
		}
	}
	for c := range listed {
		if codes[c] == "" {
			t.Errorf("the document lists error code %q, which the server never sends", c)
		}
	}
	if t.Failed() {
		t.Logf("codes found: %v", slices.Sorted(func(yield func(string) bool) {
			for c := range codes {
				if !yield(c) {
					return
				}
			}
		}))
	}
}
