package rest_test

import (
	"testing"

	"github.com/bulkhead-dev/bulkhead/rest"
)

// postgrestJS lists the requests that @supabase/postgrest-js 2.109.0 sends
// for common calls on the demo projects table, as read from its dist
// source (PostgrestQueryBuilder.select/insert/upsert/update/delete,
// PostgrestFilterBuilder, PostgrestTransformBuilder). Query strings are as
// URLSearchParams encodes them. The client also sends apikey and, for
// writes, Content-Type: application/json; those headers do not matter here.
var postgrestJS = []struct {
	call   string // the client call that produces the request
	method string
	query  string
	header map[string]string
	body   string
}{
	{
		call:   `.select('id,name').eq('name','x').order('name').limit(5)`,
		method: "GET",
		query:  "select=id%2Cname&name=eq.x&order=name.asc&limit=5",
	},
	{
		call:   `.insert({name:'a',description:'d'}).select()`,
		method: "POST",
		query:  "select=*",
		header: map[string]string{"Prefer": "return=representation"},
		body:   `{"name":"a","description":"d"}`,
	},
	{
		call:   `.insert([{name:'a'},{name:'b',description:'d'}]).select()`,
		method: "POST",
		query:  "columns=%22name%22%2C%22description%22&select=*",
		header: map[string]string{"Prefer": "return=representation"},
		body:   `[{"name":"a"},{"name":"b","description":"d"}]`,
	},
	{
		call:   `.update({name:'n'}).eq('id',id).select()`,
		method: "PATCH",
		query:  "id=eq." + rowID + "&select=*",
		header: map[string]string{"Prefer": "return=representation"},
		body:   `{"name":"n"}`,
	},
	{
		call:   `.delete().eq('id',id)`,
		method: "DELETE",
		query:  "id=eq." + rowID,
	},
	{
		call:   `.select('*').eq('id',id).single()`,
		method: "GET",
		query:  "select=*&id=eq." + rowID,
		header: map[string]string{"Accept": "application/vnd.pgrst.object+json"},
	},
	{
		call:   `.select().in('id',[id,'a,b'])`,
		method: "GET",
		query:  "select=*&id=in.%28" + rowID + "%2C%22" + tenantB + "%22%29",
	},
	{
		call:   `.select('id').is('description',null)`,
		method: "GET",
		query:  "select=id&description=is.null",
	},
	{
		call:   `.select('id,name').ilike('name','%a%')`,
		method: "GET",
		query:  "select=id%2Cname&name=ilike.%25a%25",
	},
	{
		call:   `.select().or('name.eq.a,name.eq.b')`,
		method: "GET",
		query:  "select=*&or=%28name.eq.a%2Cname.eq.b%29",
	},
	{
		call:   `.upsert({id,name:'u'}).select()`,
		method: "POST",
		query:  "select=*",
		header: map[string]string{"Prefer": "resolution=merge-duplicates, return=representation"},
		body:   `{"id":"` + rowID + `","name":"u"}`,
	},
	{
		call:   `.upsert([{id,name:'u'}],{onConflict:'id',ignoreDuplicates:true})`,
		method: "POST",
		query:  "on_conflict=id&columns=%22id%22%2C%22name%22",
		header: map[string]string{"Prefer": "resolution=ignore-duplicates"},
		body:   `[{"id":"` + rowID + `","name":"u"}]`,
	},
	{
		call:   `.select('*',{count:'exact',head:true})`,
		method: "HEAD",
		query:  "select=*",
		header: map[string]string{"Prefer": "count=exact"},
	},
	{
		call:   `.select('id',{count:'planned'}).range(10,19).order('created_at',{ascending:false,nullsFirst:false})`,
		method: "GET",
		query:  "select=id&offset=10&limit=10&order=created_at.desc.nullslast",
		header: map[string]string{"Prefer": "count=planned"},
	},
	{
		call:   `.select('pid:id, name::text').neq('name','x')`,
		method: "GET",
		query:  "select=pid%3Aid%2Cname%3A%3Atext&name=neq.x",
	},
	{
		call:   `.select('id').not('id','in','(a,b)')`,
		method: "GET",
		query:  "select=id&id=not.in.%28" + rowID + "%2C" + tenantB + "%29",
	},
	{
		call:   `.select('id').match({name:'a',description:'b'})`,
		method: "GET",
		query:  "select=id&name=eq.a&description=eq.b",
	},
	{
		call:   `.delete().in('id',[id]).select('id').single()`,
		method: "DELETE",
		query:  "id=in.%28" + rowID + "%29&select=id",
		header: map[string]string{"Prefer": "return=representation", "Accept": "application/vnd.pgrst.object+json"},
	},
	{
		call:   `.select('id').stripNulls()`,
		method: "GET",
		query:  "select=id",
		header: map[string]string{"Accept": "application/vnd.pgrst.array+json;nulls=stripped"},
	},
	{
		call:   `.insert({name:'r'}).rollback()`,
		method: "POST",
		header: map[string]string{"Prefer": "tx=rollback"},
		body:   `{"name":"r"}`,
	},
	{
		call:   `.select('id').or('name.eq.a,and(description.is.null,name.like.*x*)')`,
		method: "GET",
		query:  "select=id&or=%28name.eq.a%2Cand%28description.is.null%2Cname.like.*x*%29%29",
	},
	{
		call:   `.update({name:'n'},{count:'exact'}).eq('name','a').maxAffected(1)`,
		method: "PATCH",
		query:  "name=eq.a",
		header: map[string]string{"Prefer": "count=exact, handling=strict, max-affected=1"},
		body:   `{"name":"n"}`,
	},
	{
		call:   `.select('id').likeAnyOf('name',['a*','*b'])`,
		method: "GET",
		query:  "select=id&name=like%28any%29.%7Ba*%2C*b%7D",
	},
}

// TestPostgrestJS checks that Build accepts every request postgrest-js
// makes for the calls above.
func TestPostgrestJS(t *testing.T) {
	for _, tt := range postgrestJS {
		t.Run(tt.call, func(t *testing.T) {
			r := req{method: tt.method, query: tt.query, header: tt.header, body: tt.body}
			st, err := rest.Build(projects, r.request(t))
			if err != nil {
				t.Fatalf("Build(%s %s) = %v, want a statement", tt.method, tt.query, err)
			}
			checkStatement(t, projects, st)
		})
	}
}
