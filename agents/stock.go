package agents

import (
	"fmt"

	"github.com/parley-dev/parley/internal/tomlfile"
)

// StockFile is the inventory's stock, in its inbox folder, for a person to
// edit by hand.
const StockFile = "stock.toml"

// StockItem is one item the inventory watches.
type StockItem struct {
	Name              string `toml:"name"`
	Stock             int64  `toml:"stock"`
	ReorderPoint      int64  `toml:"reorder_point"`
	ReorderQuantity   int64  `toml:"reorder_quantity"`
	DeliverWithinDays int    `toml:"deliver_within_days"`
}

// DefaultStock is what parley init writes for an inventory agent: enough
// widgets, so nothing happens until a person (or parley demo) lowers it.
const DefaultStock = `# The stock the inventory agent watches. Edit it by hand: when an item's
# stock falls below its reorder point, the agent asks procurement for
# reorder_quantity more, once per need.

[[item]]
name = "widget"
stock = 400
reorder_point = 100
reorder_quantity = 500
deliver_within_days = 8
`

// LoadStock reads a stock file strictly.
func LoadStock(path string) ([]StockItem, error) {
	var f struct {
		Item []StockItem `toml:"item"`
	}
	if _, err := tomlfile.DecodeFile(path, &f); err != nil {
		return nil, err
	}
	for i, it := range f.Item {
		if it.Name == "" || it.ReorderQuantity <= 0 || it.Stock < 0 || it.ReorderPoint < 0 || it.DeliverWithinDays < 0 {
			return nil, tomlfile.Errorf(path, 0, "each [[item]] has a name, stock, reorder_point, reorder_quantity above 0 and deliver_within_days",
				"item %d (%q) is incomplete or negative", i+1, it.Name)
		}
	}
	if len(f.Item) == 0 {
		return nil, fmt.Errorf("%s: no [[item]]", path)
	}
	return f.Item, nil
}
