//! What each rule means, in the operator's words (Bahasa Indonesia). The
//! station shows these beside the rule's name, so an operator reading a
//! refusal and an engineer reading a log name the same rule.

/// The Indonesian explanation of a rule (hard or janggal), or a general one
/// for a rule this table does not know.
pub fn pesan(rule: &str) -> &'static str {
    match rule {
        "id_format" => "Kode hanya boleh berisi huruf, angka dan . - _ : (1 sampai 128 karakter).",
        "required_field" => {
            "Kolom wajib belum diisi: suara setiap paslon, suara sah, tidak sah dan jumlah."
        }
        "figure_limit" => "Angka terlalu besar untuk satu TPS.",
        "non_negative" => "Angka tidak boleh negatif.",
        "candidate_set" => "Paslon harus tepat sama dengan daftar paslon pemilihan ini.",
        "sum_candidates_eq_sah" => "Jumlah suara seluruh paslon harus sama dengan suara sah.",
        "sah_plus_tidak_sah_eq_total" => {
            "Suara sah ditambah suara tidak sah harus sama dengan jumlah suara."
        }
        "users_sum_eq_users_total" => {
            "Pengguna hak pilih DPT + DPTb + DPK harus sama dengan jumlah pengguna hak pilih."
        }
        "ballots_received_eq_used_unused_damaged" => {
            "Surat suara diterima harus sama dengan digunakan + tidak digunakan + rusak."
        }
        "users_dpt_le_dpt" => {
            "Pengguna hak pilih dari DPT tidak boleh melebihi jumlah pemilih DPT."
        }
        "tps_exists" => "TPS ini tidak ada dalam daftar TPS KPU.",
        "contest_exists" => "Pemilihan ini tidak ada dalam daftar KPU.",
        "contest_covers_tps" => "TPS ini berada di luar wilayah pemilihan ini.",
        "result_exists" => {
            "TPS ini sudah punya hasil lain. Perbaikan diajukan melalui verifikator."
        }
        "submission_id_reused" => "Nomor kiriman ini sudah dipakai untuk hasil lain.",
        "permission:submit" => {
            "Akun Anda tidak berwenang mengirim hasil untuk TPS ini (di luar wilayah tugas)."
        }
        "user_disabled" => "Akun Anda dinonaktifkan. Hubungi admin KPU.",
        "cert_revoked" => "Sertifikat Anda dicabut. Minta sertifikat baru ke admin KPU.",
        "cert_expired" => "Sertifikat Anda kedaluwarsa. Minta sertifikat baru ke admin KPU.",
        "authenticated" => "Server tidak mengenali sertifikat Anda.",
        "batch_size" => "Terlalu banyak hasil dalam satu kiriman.",
        "total_ne_ballots_used" => "Jumlah suara berbeda dengan surat suara yang digunakan.",
        "total_ne_users_total" => "Jumlah suara berbeda dengan jumlah pengguna hak pilih.",
        "total_over_800" => "Jumlah suara melebihi 800, batas satu TPS.",
        "votes_over_registered" => "Suara satu paslon melebihi jumlah pemilih terdaftar.",
        "turnout_over_registered" => "Pengguna hak pilih melebihi jumlah pemilih terdaftar.",
        "all_votes_one_candidate" => "Semua suara sah untuk satu paslon.",
        _ => "Ditolak oleh server.",
    }
}

/// The C.Hasil label of a submission's figure, by its field name.
pub fn field_label(field: &str) -> &'static str {
    match field {
        "dpt" => "Pemilih DPT",
        "dptb" => "Pemilih DPTb",
        "dpk" => "Pemilih DPK",
        "users_dpt" => "Pengguna hak pilih DPT",
        "users_dptb" => "Pengguna hak pilih DPTb",
        "users_dpk" => "Pengguna hak pilih DPK",
        "users_total" => "Jumlah pengguna hak pilih",
        "ballots_received" => "Surat suara diterima",
        "ballots_used" => "Surat suara digunakan",
        "ballots_unused" => "Surat suara tidak digunakan",
        "ballots_damaged" => "Surat suara rusak/keliru coblos",
        "sah" => "Suara sah",
        "tidak_sah" => "Suara tidak sah",
        "total" => "Jumlah suara sah dan tidak sah",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hard_rule_of_the_form_has_its_own_words() {
        for rule in [
            "required_field",
            "non_negative",
            "sum_candidates_eq_sah",
            "sah_plus_tidak_sah_eq_total",
            "users_sum_eq_users_total",
            "ballots_received_eq_used_unused_damaged",
            "users_dpt_le_dpt",
            "candidate_set",
        ] {
            assert_ne!(pesan(rule), pesan("no such rule"), "{rule}");
        }
    }
}
