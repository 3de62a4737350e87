package tenantstate

import (
	"go/ast"
	"go/constant"
	"go/token"
	"go/types"
	"slices"

	"golang.org/x/tools/go/types/typeutil"
)

// A ref is memory that a write may land in: the storage of the variable v
// itself, or (storage false) memory reachable from v's value, such as what
// a pointer points to or a map's entries.
type ref struct {
	v       *types.Var
	storage bool
}

// A site is a write in a function body.
type site struct {
	at    ast.Node // where to report
	refs  []ref    // what it may write
	path  ast.Expr // the expression written to or through
	via   string   // " by F" when a call does the writing
	isMap bool     // whether it writes a map's entries
}

// A mutator says which operand of a call outside the package the call
// writes: the receiver (argRecv) or an argument, by index.
type mutator struct {
	arg   int
	cache bool // the operand is a map or a map-like cache
}

const argRecv = -1

// Isolation: the calls known to write their receiver or an argument. A
// call missing here is not seen as a write. The numeric types and
// functions of sync/atomic are left out on purpose (see the package
// documentation, "What is not reported"); nothing that can hold a
// tenant's data may be.
var mutatorTable = []struct {
	owner string // package path, or package path "." receiver type
	m     mutator
	names []string
}{
	{"sync.Map", mutator{argRecv, true}, []string{"Store", "LoadOrStore", "LoadAndDelete", "Delete", "Swap", "CompareAndSwap", "CompareAndDelete", "Clear"}},
	{"sync/atomic.Value", mutator{argRecv, false}, []string{"Store", "Swap", "CompareAndSwap"}},
	{"sync/atomic.Pointer", mutator{argRecv, false}, []string{"Store", "Swap", "CompareAndSwap"}},
	{"sync/atomic", mutator{0, false}, []string{"StorePointer", "SwapPointer", "CompareAndSwapPointer"}},
	{"container/list.List", mutator{argRecv, false}, []string{"PushBack", "PushFront", "PushBackList", "PushFrontList", "InsertBefore", "InsertAfter", "Remove", "MoveToFront", "MoveToBack", "MoveBefore", "MoveAfter", "Init"}},
	{"container/ring.Ring", mutator{argRecv, false}, []string{"Link", "Unlink"}},
	{"container/heap", mutator{0, false}, []string{"Push", "Pop", "Init", "Fix", "Remove"}},
	{"strings.Builder", mutator{argRecv, false}, []string{"Write", "WriteString", "WriteByte", "WriteRune", "Grow", "Reset"}},
	{"bytes.Buffer", mutator{argRecv, false}, []string{"Write", "WriteString", "WriteByte", "WriteRune", "ReadFrom", "Grow", "Reset", "Truncate"}},
	{"sort", mutator{0, false}, []string{"Sort", "Stable", "Slice", "SliceStable", "Strings", "Ints", "Float64s"}},
	{"slices", mutator{0, false}, []string{"Sort", "SortFunc", "SortStableFunc", "Reverse"}},
	{"maps", mutator{0, true}, []string{"Copy", "DeleteFunc"}},
	{"encoding/json", mutator{1, false}, []string{"Unmarshal"}},
	{"encoding/xml", mutator{1, false}, []string{"Unmarshal"}},
	{"encoding/binary", mutator{2, false}, []string{"Read"}},
	{"encoding/json.Decoder", mutator{0, false}, []string{"Decode"}},
	{"encoding/xml.Decoder", mutator{0, false}, []string{"Decode"}},
	{"encoding/gob.Decoder", mutator{0, false}, []string{"Decode"}},
}

// mutators indexes mutatorTable by owner "." name.
var mutators = func() map[string]mutator {
	out := map[string]mutator{}
	for _, row := range mutatorTable {
		for _, name := range row.names {
			out[row.owner+"."+name] = row.m
		}
	}
	return out
}()

// mutatorOf returns how the call of fn writes, if fn is a known mutator.
func mutatorOf(fn *types.Func) (mutator, bool) {
	if fn.Pkg() == nil {
		return mutator{}, false
	}
	key := fn.Pkg().Path() + "." + fn.Name()
	if recv := fn.Signature().Recv(); recv != nil {
		t := recv.Type()
		if p, ok := types.Unalias(t).(*types.Pointer); ok {
			t = p.Elem()
		}
		named, ok := types.Unalias(t).(*types.Named)
		if !ok {
			return mutator{}, false
		}
		key = fn.Pkg().Path() + "." + named.Origin().Obj().Name() + "." + fn.Name()
	}
	m, ok := mutators[key]
	return m, ok
}

// shortName names fn as its package's callers write it: json.Unmarshal,
// sync.Map.Store.
func shortName(fn *types.Func) string {
	name := fn.Name()
	if recv := fn.Signature().Recv(); recv != nil {
		t := recv.Type()
		if p, ok := types.Unalias(t).(*types.Pointer); ok {
			t = p.Elem()
		}
		if named, ok := types.Unalias(t).(*types.Named); ok {
			name = named.Origin().Obj().Name() + "." + name
		}
	}
	return fn.Pkg().Name() + "." + name
}

// collectAliases records, for every local variable, what its value may
// refer to, and the expressions assigned to each variable (for tracing
// handlers).
func (c *checker) collectAliases() {
	for _, f := range c.pass.Files {
		ast.Inspect(f, func(x ast.Node) bool {
			switch x := x.(type) {
			case *ast.AssignStmt:
				if len(x.Lhs) == len(x.Rhs) {
					for i := range x.Lhs {
						c.assign(x.Lhs[i], x.Rhs[i])
					}
				}
			case *ast.ValueSpec:
				for i, name := range x.Names {
					if i < len(x.Values) {
						c.assign(name, x.Values[i])
					}
				}
			case *ast.TypeSwitchStmt:
				// switch v := x.(type) declares a v in each clause.
				if as, ok := x.Assign.(*ast.AssignStmt); ok && len(as.Rhs) == 1 {
					if ta, ok := as.Rhs[0].(*ast.TypeAssertExpr); ok {
						refs := c.valRefs(ta.X)
						for _, cl := range x.Body.List {
							if v, ok := c.info.Implicits[cl].(*types.Var); ok && hasPointers(v.Type()) {
								c.aliases[v] = append(c.aliases[v], refs...)
							}
						}
					}
				}
			case *ast.RangeStmt:
				// The elements of what is ranged over are loaded from it.
				elems := c.loaded(c.valRefs(x.X))
				for _, kv := range []ast.Expr{x.Key, x.Value} {
					if kv != nil {
						c.alias(kv, elems)
					}
				}
			}
			return true
		})
	}
}

func (c *checker) assign(lhs, rhs ast.Expr) {
	if id, ok := ast.Unparen(lhs).(*ast.Ident); ok {
		if v, ok := c.info.ObjectOf(id).(*types.Var); ok {
			c.funcVars[v] = append(c.funcVars[v], rhs)
		}
	}
	c.alias(lhs, c.valRefs(rhs))
}

// alias records that the local variable lhs (or a field or element of its
// own storage) now holds a value referring to refs.
func (c *checker) alias(lhs ast.Expr, refs []ref) {
	roots := c.locRoots(lhs)
	if len(roots) != 1 || !roots[0].storage || isGlobal(roots[0].v) {
		return
	}
	v := roots[0].v
	if !hasPointers(c.info.TypeOf(lhs)) {
		return
	}
	for _, r := range refs {
		if r.v != v && !slices.Contains(c.aliases[v], r) {
			c.aliases[v] = append(c.aliases[v], r)
		}
	}
}

// closure adds to refs what the variables referred to may in turn refer
// to, through aliases.
func (c *checker) closure(refs []ref) []ref {
	var out []ref
	seen := map[ref]bool{}
	var visit func(r ref)
	visit = func(r ref) {
		if seen[r] {
			return
		}
		seen[r] = true
		out = append(out, r)
		if !r.storage {
			for _, a := range c.aliases[r.v] {
				visit(a)
			}
		}
	}
	for _, r := range refs {
		visit(r)
	}
	return out
}

// loaded returns what a value loaded from the memory refs may refer to.
func (c *checker) loaded(refs []ref) []ref {
	out := make([]ref, len(refs))
	for i, r := range refs {
		out[i] = ref{r.v, false}
	}
	return c.closure(out)
}

// locRoots returns the memory that the addressable expression e denotes.
func (c *checker) locRoots(e ast.Expr) []ref {
	switch x := ast.Unparen(e).(type) {
	case *ast.Ident:
		if v, ok := c.info.ObjectOf(x).(*types.Var); ok && !v.IsField() {
			return []ref{{v, true}}
		}
	case *ast.SelectorExpr:
		sel := c.info.Selections[x]
		if sel == nil { // a qualified identifier: pkg.Var
			if v, ok := c.info.Uses[x.Sel].(*types.Var); ok {
				return []ref{{v, true}}
			}
			return nil
		}
		if sel.Kind() != types.FieldVal {
			return nil
		}
		if sel.Indirect() {
			return c.valRefs(x.X)
		}
		return c.locRoots(x.X)
	case *ast.IndexExpr:
		switch c.under(x.X).(type) {
		case *types.Array:
			return c.locRoots(x.X)
		case *types.Map, *types.Slice, *types.Pointer:
			return c.valRefs(x.X)
		}
	case *ast.StarExpr:
		return c.valRefs(x.X)
	}
	return nil
}

// valRefs returns the memory that the value of e may refer to.
func (c *checker) valRefs(e ast.Expr) []ref {
	switch x := ast.Unparen(e).(type) {
	case *ast.Ident:
		if v, ok := c.info.ObjectOf(x).(*types.Var); ok && !v.IsField() {
			return c.closure([]ref{{v, false}})
		}
	case *ast.SelectorExpr:
		sel := c.info.Selections[x]
		if sel == nil {
			if v, ok := c.info.Uses[x.Sel].(*types.Var); ok {
				return c.closure([]ref{{v, false}})
			}
			return nil
		}
		if sel.Kind() == types.FieldVal {
			return c.loaded(c.locRoots(x))
		}
	case *ast.IndexExpr:
		if _, ok := c.under(x.X).(*types.Signature); ok { // an instantiation
			return nil
		}
		return c.loaded(c.locRoots(x))
	case *ast.StarExpr:
		return c.loaded(c.valRefs(x.X))
	case *ast.UnaryExpr:
		if x.Op != token.AND {
			return nil
		}
		if lit, ok := ast.Unparen(x.X).(*ast.CompositeLit); ok {
			// &T{...} points to a new object holding the elements.
			return []ref{{c.fresh(x, c.elemRefs(lit)), true}}
		}
		return c.locRoots(x.X)
	case *ast.SliceExpr:
		if x.Slice3 && isZero(c.info.Types[x.Max]) {
			// x[:0:0] has no capacity: nothing can be written through it,
			// and append(x[:0:0], ...) copies.
			return nil
		}
		if _, ok := c.under(x.X).(*types.Array); ok {
			return c.locRoots(x.X)
		}
		return c.valRefs(x.X)
	case *ast.TypeAssertExpr:
		return c.valRefs(x.X)
	case *ast.CompositeLit:
		switch c.under(x).(type) {
		case *types.Slice, *types.Map:
			// A new backing array or map holding the elements.
			return []ref{{c.fresh(x, c.elemRefs(x)), true}}
		}
		// A struct or array value holds its elements inline.
		return c.elemRefs(x)
	case *ast.CallExpr:
		if tv, ok := c.info.Types[x.Fun]; ok && tv.IsType() {
			if len(x.Args) == 1 {
				return c.valRefs(x.Args[0])
			}
			return nil
		}
		if id, ok := ast.Unparen(x.Fun).(*ast.Ident); ok {
			if b, ok := c.info.Uses[id].(*types.Builtin); ok && b.Name() == "append" && len(x.Args) > 0 {
				// The result shares the first argument's backing array, or
				// is a new one; either holds the appended elements.
				var elems []ref
				if s, ok := c.under(x.Args[0]).(*types.Slice); !ok || hasPointers(s.Elem()) {
					if x.Ellipsis.IsValid() && len(x.Args) == 2 {
						elems = c.loaded(c.valRefs(x.Args[1]))
					} else {
						for _, a := range x.Args[1:] {
							elems = append(elems, c.valRefs(a)...)
						}
					}
				}
				return append(c.valRefs(x.Args[0]), ref{c.fresh(x, elems), true})
			}
		}
	}
	return nil
}

// elemRefs returns what the elements of a composite literal refer to.
func (c *checker) elemRefs(lit *ast.CompositeLit) []ref {
	var out []ref
	for _, el := range lit.Elts {
		if kv, ok := el.(*ast.KeyValueExpr); ok {
			el = kv.Value
		}
		out = append(out, c.pointerRefs(el, c.valRefs(el))...)
	}
	return out
}

// pointerRefs returns refs, or nil if e's type holds no pointers: a
// string or a number copied out of shared memory cannot be written
// through.
func (c *checker) pointerRefs(e ast.Expr, refs []ref) []ref {
	t := c.info.TypeOf(e)
	if t == nil || hasPointers(t) {
		return refs
	}
	return nil
}

// fresh returns the anonymous variable standing for the object that the
// expression e allocates, whose contents refer to refs. Such a variable is
// never shared state itself; writing through it reaches refs only by a
// further dereference.
func (c *checker) fresh(e ast.Expr, refs []ref) *types.Var {
	v, ok := c.allocs[e]
	if !ok {
		v = types.NewVar(e.Pos(), c.pass.Pkg, "", c.info.TypeOf(e))
		c.allocs[e] = v
	}
	for _, r := range refs {
		if r.v != v && !slices.Contains(c.aliases[v], r) {
			c.aliases[v] = append(c.aliases[v], r)
		}
	}
	return v
}

// isZero reports whether tv is the constant 0.
func isZero(tv types.TypeAndValue) bool {
	return tv.Value != nil && tv.Value.Kind() == constant.Int && constant.Sign(tv.Value) == 0
}

// hasPointers reports whether a value of type t can refer to other
// memory. Strings are immutable, so they do not count.
func hasPointers(t types.Type) bool {
	return hasPointersSeen(t, map[types.Type]bool{})
}

func hasPointersSeen(t types.Type, seen map[types.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch u := t.Underlying().(type) {
	case *types.Basic:
		return u.Kind() == types.UnsafePointer
	case *types.Array:
		return hasPointersSeen(u.Elem(), seen)
	case *types.Struct:
		for f := range u.Fields() {
			if hasPointersSeen(f.Type(), seen) {
				return true
			}
		}
		return false
	}
	return true
}

func (c *checker) under(e ast.Expr) types.Type {
	t := c.info.TypeOf(e)
	if t == nil {
		return nil
	}
	return t.Underlying()
}

// scanBody records the calls, references and writes in n's body, leaving
// nested literals to their own fnodes.
func (c *checker) scanBody(n *fnode) {
	skip := c.onceInits(n)
	seen := map[*fnode]bool{}
	edge := func(m *fnode) {
		if m != nil && !seen[m] {
			seen[m] = true
			n.callees = append(n.callees, m)
		}
	}
	ast.Inspect(n.body, func(x ast.Node) bool {
		if x == nil || skip[x] {
			return false
		}
		switch x := x.(type) {
		case *ast.FuncLit:
			edge(c.lits[x])
			return false
		case *ast.Ident:
			switch o := c.info.Uses[x].(type) {
			case *types.Func:
				edge(c.funcs[o.Origin()])
			case *types.Var:
				edge(c.litVars[o])
			}
		case *ast.AssignStmt:
			if x.Tok != token.DEFINE {
				for _, lhs := range x.Lhs {
					c.addWrite(n, lhs)
				}
			}
		case *ast.IncDecStmt:
			c.addWrite(n, x.X)
		case *ast.RangeStmt:
			if x.Tok == token.ASSIGN {
				for _, kv := range []ast.Expr{x.Key, x.Value} {
					if kv != nil {
						c.addWrite(n, kv)
					}
				}
			}
		case *ast.CallExpr:
			c.scanCall(n, x)
		}
		return true
	})
}

// addWrite records an assignment to lhs.
func (c *checker) addWrite(n *fnode, lhs ast.Expr) {
	refs := c.locRoots(lhs)
	if len(refs) == 0 {
		return
	}
	s := &site{at: lhs, refs: refs, path: lhs}
	if ix, ok := ast.Unparen(lhs).(*ast.IndexExpr); ok {
		if _, ok := c.under(ix.X).(*types.Map); ok {
			s.isMap, s.path = true, ix.X
		}
	}
	n.sites = append(n.sites, s)
}

// scanCall records a call that writes: a builtin, a known mutator, or a
// function of the package (whose writes through its parameters are
// only known once summarise has run).
func (c *checker) scanCall(n *fnode, call *ast.CallExpr) {
	fun := ast.Unparen(call.Fun)
	if id, ok := fun.(*ast.Ident); ok {
		if b, ok := c.info.Uses[id].(*types.Builtin); ok {
			switch b.Name() {
			case "delete", "clear", "copy":
				if len(call.Args) > 0 {
					_, isMap := c.under(call.Args[0]).(*types.Map)
					c.addOperand(n, call, call.Args[0], c.valRefs(call.Args[0]), " by "+b.Name(), isMap)
				}
			}
			return
		}
	}
	switch obj := typeutil.Callee(c.info, call).(type) {
	case *types.Func:
		if m := c.funcs[obj.Origin()]; m != nil {
			n.calls = append(n.calls, &localCall{expr: call, callee: m})
			return
		}
		m, ok := mutatorOf(obj)
		if !ok {
			return
		}
		via := " by " + shortName(obj)
		if m.arg == argRecv {
			if refs, path := c.recvRefs(call, obj.Signature().Recv().Type()); path != nil {
				c.addOperand(n, call, path, refs, via, m.cache)
			}
		} else if m.arg < len(call.Args) {
			a := call.Args[m.arg]
			c.addOperand(n, call, a, c.valRefs(a), via, m.cache)
		}
	case *types.Var:
		// A call through a variable holding a literal of the package.
		for _, m := range c.resolveObj(obj, 0) {
			n.calls = append(n.calls, &localCall{expr: call, callee: m})
		}
	case nil:
		if lit, ok := fun.(*ast.FuncLit); ok && c.lits[lit] != nil {
			n.calls = append(n.calls, &localCall{expr: call, callee: c.lits[lit]})
		}
	}
}

func (c *checker) addOperand(n *fnode, at ast.Node, path ast.Expr, refs []ref, via string, isMap bool) {
	if len(refs) > 0 {
		n.sites = append(n.sites, &site{at: at, refs: refs, path: path, via: via, isMap: isMap})
	}
}

// recvRefs returns the memory a method call may write through its
// receiver, whose declared type is recvType, and the receiver expression.
func (c *checker) recvRefs(call *ast.CallExpr, recvType types.Type) ([]ref, ast.Expr) {
	sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr)
	if !ok {
		return nil, nil
	}
	selection := c.info.Selections[sel]
	if selection == nil {
		return nil, nil
	}
	switch selection.Kind() {
	case types.MethodExpr: // (*T).M(x, ...): the receiver is the first argument
		if len(call.Args) > 0 {
			return c.valRefs(call.Args[0]), call.Args[0]
		}
		return nil, nil
	case types.MethodVal:
		_, ptrRecv := types.Unalias(recvType).(*types.Pointer)
		_, ptrX := c.under(sel.X).(*types.Pointer)
		if ptrRecv && !ptrX && !selection.Indirect() {
			// x.M() with a pointer receiver takes &x.
			return c.locRoots(sel.X), sel.X
		}
		return c.valRefs(sel.X), sel.X
	}
	return nil, nil
}

// boundRefs returns the memory a call may write through the callee's
// parameter idx (an index into its params), and the expression bound to
// it.
func (c *checker) boundRefs(cl *localCall, idx int) ([]ref, ast.Expr) {
	callee, args := cl.callee, cl.expr.Args
	pos := idx // index into the signature's parameters
	shift := 0 // index of that parameter's argument, less pos
	if callee.recv != nil {
		if idx == 0 {
			return c.recvRefs(cl.expr, callee.recv.Type())
		}
		pos--
		if sel, ok := ast.Unparen(cl.expr.Fun).(*ast.SelectorExpr); ok {
			if s := c.info.Selections[sel]; s != nil && s.Kind() == types.MethodExpr {
				shift = 1 // (*T).M(x, args...)
			}
		}
	}
	i := pos + shift
	if i >= len(args) {
		return nil, nil
	}
	sig := callee.sig
	if sig.Variadic() && pos == sig.Params().Len()-1 && !cl.expr.Ellipsis.IsValid() {
		var refs []ref
		for _, a := range args[i:] {
			refs = append(refs, c.valRefs(a)...)
		}
		return refs, args[i]
	}
	return c.valRefs(args[i]), args[i]
}

// onceInits returns the arguments of sync.Once.Do calls in n's body that
// capture nothing of the function around them: lazy initialisation that
// does not depend on the request, which is not followed.
//
// Isolation: a literal that captures any local of the handler, such as
// the event, is followed, so that once.Do(func() { cfg = load(ev) }) is
// reported.
func (c *checker) onceInits(n *fnode) map[ast.Node]bool {
	skip := map[ast.Node]bool{}
	ast.Inspect(n.body, func(x ast.Node) bool {
		if _, ok := x.(*ast.FuncLit); ok {
			return false
		}
		call, ok := x.(*ast.CallExpr)
		if !ok || len(call.Args) != 1 {
			return true
		}
		fn, _ := typeutil.Callee(c.info, call).(*types.Func)
		if fn == nil || fn.Name() != "Do" || fn.Signature().Recv() == nil {
			return true
		}
		recv := fn.Signature().Recv().Type()
		if p, ok := types.Unalias(recv).(*types.Pointer); ok {
			recv = p.Elem()
		}
		if !isNamed(recv, "sync", "Once") {
			return true
		}
		switch a := ast.Unparen(call.Args[0]).(type) {
		case *ast.FuncLit:
			if !c.captures(a) {
				skip[a] = true
			}
		case *ast.Ident:
			if _, ok := c.info.Uses[a].(*types.Func); ok {
				skip[a] = true
			}
		}
		return true
	})
	return skip
}

// captures reports whether the literal refers to a local variable
// declared outside it.
func (c *checker) captures(lit *ast.FuncLit) bool {
	found := false
	ast.Inspect(lit.Body, func(x ast.Node) bool {
		id, ok := x.(*ast.Ident)
		if !ok || found {
			return !found
		}
		if v, ok := c.info.Uses[id].(*types.Var); ok && !v.IsField() && !isGlobal(v) &&
			(v.Pos() < lit.Pos() || v.Pos() >= lit.End()) {
			found = true
		}
		return true
	})
	return found
}
