package tenantstate

import (
	"go/ast"
	"go/types"
	"slices"
	"strings"

	"golang.org/x/tools/go/types/typeutil"
)

// maxTrace bounds how far a handler argument is traced through variables,
// wrappers and factories.
const maxTrace = 8

// findHandlers returns the package's handlers in source order. See the
// package documentation, "How handlers are found".
func (c *checker) findHandlers() []*fnode {
	var handlers []*fnode
	add := func(ns ...*fnode) {
		for _, n := range ns {
			// Handlers declared in tests are fakes: they may record what
			// they saw in captured variables.
			if n != nil && !n.handler && !n.test {
				n.handler = true
				handlers = append(handlers, n)
			}
		}
	}
	for _, n := range c.nodes {
		switch {
		case isHTTPHandler(n.sig):
			add(n)
		case n.decl != nil && (n.decl.Name.Name == "Handler" || n.decl.Name.Name == "handler") && firstIsContext(n.sig):
			add(n)
		case n.decl != nil && hasDirective(n.decl.Doc, handlerDirective):
			add(n)
		}
	}
	for _, f := range c.pass.Files {
		ast.Inspect(f, func(x ast.Node) bool {
			call, ok := x.(*ast.CallExpr)
			if !ok {
				return true
			}
			fn, _ := typeutil.Callee(c.info, call).(*types.Func)
			if fn == nil || fn.Pkg() == nil {
				return true
			}
			arg := func(i int) ast.Expr {
				if i < len(call.Args) {
					return call.Args[i]
				}
				return nil
			}
			switch fn.Pkg().Path() {
			case awsLambdaPath:
				switch fn.Name() {
				case "Start", "StartWithOptions", "StartHandlerFunc":
					add(c.resolveFuncs(arg(0), 0)...)
				case "StartWithContext":
					add(c.resolveFuncs(arg(1), 0)...)
				case "StartHandler":
					add(c.resolveInvoker(arg(0))...)
				case "StartHandlerWithContext":
					add(c.resolveInvoker(arg(1))...)
				}
			case bulkheadLambdaPath:
				if fn.Name() == "Wrap" {
					for _, a := range call.Args {
						add(c.resolveFuncs(a, 0)...)
					}
				}
			}
			return true
		})
	}
	slices.SortStableFunc(handlers, func(a, b *fnode) int { return int(a.Pos() - b.Pos()) })
	return handlers
}

// resolveFuncs returns the package functions that the function-valued
// expression e may evaluate to.
func (c *checker) resolveFuncs(e ast.Expr, depth int) []*fnode {
	if e == nil || depth > maxTrace {
		return nil
	}
	switch x := ast.Unparen(e).(type) {
	case *ast.FuncLit:
		if n := c.lits[x]; n != nil {
			return []*fnode{n}
		}
	case *ast.Ident:
		return c.resolveObj(c.info.Uses[x], depth)
	case *ast.SelectorExpr:
		// A method value s.Handle, a method expression (*T).Handle.
		return c.resolveObj(c.info.Uses[x.Sel], depth)
	case *ast.CallExpr:
		if tv, ok := c.info.Types[x.Fun]; ok && tv.IsType() {
			// A conversion such as http.HandlerFunc(f).
			if len(x.Args) == 1 {
				return c.resolveFuncs(x.Args[0], depth+1)
			}
			return nil
		}
		var out []*fnode
		if fn := typeutil.StaticCallee(c.info, x); fn != nil {
			if n := c.funcs[fn.Origin()]; n != nil {
				// A handler factory or middleware of this package: the
				// functions it returns.
				for _, r := range returns(n) {
					out = append(out, c.resolveFuncs(r, depth+1)...)
				}
			}
		}
		// A wrapper, such as middleware or another package's
		// instrumentation: the functions passed to it.
		for _, a := range x.Args {
			out = append(out, c.resolveFuncs(a, depth+1)...)
		}
		return out
	}
	return nil
}

func (c *checker) resolveObj(obj types.Object, depth int) []*fnode {
	switch o := obj.(type) {
	case *types.Func:
		if n := c.funcs[o.Origin()]; n != nil {
			return []*fnode{n}
		}
	case *types.Var:
		if n := c.litVars[o]; n != nil {
			return []*fnode{n}
		}
		var out []*fnode
		for _, e := range c.funcVars[o] {
			out = append(out, c.resolveFuncs(e, depth+1)...)
		}
		return out
	}
	return nil
}

// resolveInvoker returns the Invoke method of the lambda.Handler value e,
// when it is a type of this package, and the functions e wraps.
func (c *checker) resolveInvoker(e ast.Expr) []*fnode {
	if e == nil {
		return nil
	}
	out := c.resolveFuncs(e, 0)
	if t := c.info.TypeOf(e); t != nil {
		obj, _, _ := types.LookupFieldOrMethod(t, true, c.pass.Pkg, "Invoke")
		if fn, ok := obj.(*types.Func); ok {
			if n := c.funcs[fn.Origin()]; n != nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// returns lists the expressions n's body returns, outside nested literals.
func returns(n *fnode) []ast.Expr {
	var out []ast.Expr
	ast.Inspect(n.body, func(x ast.Node) bool {
		switch x := x.(type) {
		case *ast.FuncLit:
			return false
		case *ast.ReturnStmt:
			out = append(out, x.Results...)
		}
		return true
	})
	return out
}

// isHTTPHandler reports whether sig takes (http.ResponseWriter,
// *http.Request).
func isHTTPHandler(sig *types.Signature) bool {
	ps := sig.Params()
	if ps.Len() != 2 || !isNamed(ps.At(0).Type(), "net/http", "ResponseWriter") {
		return false
	}
	p, ok := types.Unalias(ps.At(1).Type()).(*types.Pointer)
	return ok && isNamed(p.Elem(), "net/http", "Request")
}

// firstIsContext reports whether sig's first parameter is a
// context.Context.
func firstIsContext(sig *types.Signature) bool {
	return sig.Params().Len() > 0 && isNamed(sig.Params().At(0).Type(), "context", "Context")
}

// isNamed reports whether t is the named type path.name.
func isNamed(t types.Type, path, name string) bool {
	named, ok := types.Unalias(t).(*types.Named)
	if !ok {
		return false
	}
	obj := named.Origin().Obj()
	return obj.Pkg() != nil && obj.Pkg().Path() == path && obj.Name() == name
}

// hasDirective reports whether the comment group has the line directive.
func hasDirective(doc *ast.CommentGroup, directive string) bool {
	if doc == nil {
		return false
	}
	for _, cm := range doc.List {
		if cm.Text == directive || strings.HasPrefix(cm.Text, directive+" ") {
			return true
		}
	}
	return false
}
