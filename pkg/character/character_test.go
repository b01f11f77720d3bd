package character

import "testing"

func TestAdmit(t *testing.T) {
	base := Character{Species: "Human", Status: "Alive", OriginName: "Earth (C-137)"}
	tests := []struct {
		name string
		edit func(*Character)
		want bool
	}{
		{"earth C-137", func(*Character) {}, true},
		{"replacement dimension", func(c *Character) { c.OriginName = "Earth (Replacement Dimension)" }, true},
		{"non-ASCII dimension", func(c *Character) { c.OriginName = "Earth (J19ζ7)" }, true},
		{"humanoid", func(c *Character) { c.Species = "Humanoid" }, false},
		{"lower-case species", func(c *Character) { c.Species = "human" }, false},
		{"species with trailing space", func(c *Character) { c.Species = "Human " }, false},
		{"dead", func(c *Character) { c.Status = "Dead" }, false},
		{"unknown status", func(c *Character) { c.Status = "unknown" }, false},
		{"lower-case status", func(c *Character) { c.Status = "alive" }, false},
		{"post-apocalyptic earth", func(c *Character) { c.OriginName = "Post-Apocalyptic Earth" }, false},
		{"cronenberg earth", func(c *Character) { c.OriginName = "Cronenberg Earth" }, false},
		{"unknown origin", func(c *Character) { c.OriginName = "unknown" }, false},
		{"plain Earth", func(c *Character) { c.OriginName = "Earth" }, false},
		{"no space before paren", func(c *Character) { c.OriginName = "Earth(C-137)" }, false},
		{"lower-case earth", func(c *Character) { c.OriginName = "earth (C-137)" }, false},
		{"leading space", func(c *Character) { c.OriginName = " Earth (C-137)" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.edit(&c)
			if got, want := Admit(c), tt.want; got != want {
				t.Errorf("Admit(%+v) = %v, want %v", c, got, want)
			}
		})
	}
}

func TestRefusalsAgreeWithAdmit(t *testing.T) {
	for _, species := range []string{"Human", "Humanoid", "human", ""} {
		for _, status := range []string{"Alive", "Dead", "unknown", "alive"} {
			for _, origin := range []string{"Earth (C-137)", "Earth", "Cronenberg Earth", "unknown", ""} {
				c := Character{Species: species, Status: status, OriginName: origin}
				r := Refusals(c)
				if Admit(c) != (len(r) == 0) {
					t.Errorf("%+v: Admit = %v but Refusals = %v", c, Admit(c), r)
				}
				want := map[string]bool{RuleSpecies: species != "Human", RuleStatus: status != "Alive", RuleOrigin: origin != "Earth (C-137)"}
				for _, rule := range r {
					if !want[rule] {
						t.Errorf("%+v: Refusals names %s, which it passes", c, rule)
					}
					delete(want, rule)
				}
				for rule, failed := range want {
					if failed {
						t.Errorf("%+v: Refusals = %v, misses %s", c, r, rule)
					}
				}
			}
		}
	}
}
