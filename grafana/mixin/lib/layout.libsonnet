// Lays out a dashboard from rows of panels: each row gets a full-width row
// header, its panels share the 24-column grid equally (the last one takes the
// remainder), and every panel gets a unique id that is stable in reading order.
{
  local gridWidth = 24,

  // rows: [{ title: 'Traffic', height: 8, panels: [...] }, ...]
  grid(rows)::
    local flat = std.foldl(
      function(acc, row)
        local n = std.length(row.panels);
        local width = std.floor(gridWidth / n);
        local height = std.get(row, 'height', 8);
        local header = {
          panel: {
            type: 'row',
            title: row.title,
            collapsed: false,
            panels: [],
            gridPos: { h: 1, w: gridWidth, x: 0, y: acc.y },
          },
        };
        local placed = [
          {
            panel: row.panels[i] {
              // The last panel takes what the equal split leaves over.
              gridPos: {
                h: height,
                w: if i == n - 1 then gridWidth - i * width else width,
                x: i * width,
                y: acc.y + 1,
              },
            },
          }
          for i in std.range(0, n - 1)
        ];
        { y: acc.y + 1 + height, items: acc.items + [header] + placed },
      rows,
      { y: 0, items: [] },
    );
    [
      flat.items[i].panel { id: i + 1 }
      for i in std.range(0, std.length(flat.items) - 1)
    ],
}
