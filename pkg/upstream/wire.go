// Package upstream crawls the Rick and Morty REST API's character pages.
package upstream

// Place is a named location reference as the upstream encodes it; an unknown
// place is {"name":"unknown","url":""}.
type Place struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// Character is one element of a page's results, exactly as the upstream sends it.
type Character struct {
	ID       int      `json:"id"`
	Name     string   `json:"name"`
	Status   string   `json:"status"`
	Species  string   `json:"species"`
	Type     string   `json:"type"`
	Gender   string   `json:"gender"`
	Origin   Place    `json:"origin"`
	Location Place    `json:"location"`
	Image    string   `json:"image"`
	Episode  []string `json:"episode"`
	URL      string   `json:"url"`
	Created  string   `json:"created"`
}

// Info is a page's paging header.
type Info struct {
	Count int     `json:"count"`
	Pages int     `json:"pages"`
	Next  *string `json:"next"`
	Prev  *string `json:"prev"`
}

// Page is one answer of GET {base}/character?page=N.
type Page struct {
	Info    Info        `json:"info"`
	Results []Character `json:"results"`
}

// PageSize is the upstream's fixed page size.
const PageSize = 20
